"""事项要素质量检查 (data-quality check of implementation entries): one rule set for the staff form, the
API, submit and approve, ``flask catalog check`` and the administrators' quality page.

Each rule has a code, a level and a Chinese message naming the field:

- ``error`` blocks submit and approve (and a save that introduces it, for the value rules);
- ``warning`` is shown (entry page, quality page) and counted, but blocks nothing.

The rules work on the entry snapshot dict (catalog.entries ``_snapshot``: the entry's columns with
the names of catalog/elements.py, plus the child lists ``materials`` and ``fees``), so they are pure
and testable on dicts, and rules about elements that another change adds (charges, pay_online,
complaint_phone...) read those keys when they exist.

Three kinds of rule:

- value rules compare recorded values (承诺 ≤ 法定, a visit needs a reason, fees in a sane range...).
  A missing element is never their failure: they skip when a value they compare is not recorded;
- required rules: what a published guide must state before it is submitted (the time limits and
  where to apply: errors, as before this module existed), and the elements a citizen needs, which
  read "未填报" (warnings, ``MISSING_*``);
- the 不见面 flag must agree with the class the rule derived (catalog.norules).

Value rules run on every save (only those touching a changed field, so a fresh claim can be filled in
piece by piece); every rule runs at submit, approve and in the catalogue check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from catalog.elements import FIELD_LABELS, NOT_RECORDED
from catalog.norules import split_codes

ERROR, WARNING = "error", "warning"
LEVEL_LABELS = {ERROR: "错误", WARNING: "提示"}

# Types that are powers (行政权力): every type except 公共服务 (20). Their 设定依据 is required.
PUBLIC_SERVICE_TYPE = "20"
# A fee item above this many 元 is implausible for an administrative fee; the form and the exports
# show fees in 元 (the database keeps integer fen).
MAX_FEE_YUAN = 1_000_000
# 全程网办 as the depth codes state it: accepted (4) and handled (5) online, result returned online.
FULL_ONLINE_CODES = frozenset({"4", "5"})
ONLINE_RESULT_CODES = frozenset({"6", "7"})
# The elements a citizen needs to use the guide; each reads 未填报 (a warning) until recorded.
CITIZEN_ELEMENTS = (
    "accept_conditions",
    "visits",
    "handle_forms",
    "charges",
    "result_delivery",
    "phone",
    "complaint_phone",
)


@dataclass(frozen=True)
class Finding:
    """One failure of one rule on one entry."""

    code: str
    level: str
    field: str
    message: str


@dataclass(frozen=True)
class Rule:
    code: str
    level: str
    fields: tuple[str, ...]  # the elements it reads: a save runs it when one of them changed
    title: str  # Chinese, for the quality page's rule list
    check: Callable[[Mapping[str, Any]], list[Finding]]
    on_save: bool = True  # value rules; required rules run at submit, approve and in the check


def _label(name: str) -> str:
    return FIELD_LABELS.get(name, name)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _to_calendar_days(days: int, unit: str) -> float:
    # 5 working days a week; the comparison only needs an upper bound, not a holiday calendar.
    return days * 7 / 5 if unit == "working" else float(days)


# ---------------------------------------------------------------- value rules


def _promise_within_anticipate(s: Mapping[str, Any]) -> list[Finding]:
    a, p = s.get("anticipate_days"), s.get("promise_days")
    au, pu = s.get("anticipate_unit"), s.get("promise_unit")
    if not isinstance(a, int) or not isinstance(p, int):
        return []
    # A unit not recorded is read the way that makes the promise fit if anything can: the promise as
    # short as it can be (自然日), the legal limit as long as it can be (工作日). So the rule fails only
    # when the promise is too long under every reading of what is missing.
    a_unit = au if isinstance(au, str) and au.strip() else "working"
    p_unit = pu if isinstance(pu, str) and pu.strip() else "calendar"
    same_unit = a_unit == p_unit
    too_long = p > a if same_unit else _to_calendar_days(p, p_unit) > _to_calendar_days(a, a_unit)
    if not too_long:
        return []
    return [Finding("PROMISE_GT_ANTICIPATE", ERROR, "promise_days",
                    f"{_label('promise_days')}不能超过{_label('anticipate_days')}")]


def _instant_project_type(s: Mapping[str, Any]) -> list[Finding]:
    p, kind = s.get("promise_days"), s.get("project_type")
    if not isinstance(p, int) or _blank(kind):
        return []
    if p == 0 and kind != "1":
        return [Finding("INSTANT_TYPE", ERROR, "project_type",
                        f"{_label('promise_days')}为 0 的是即办件，{_label('project_type')}应为即办件")]
    if p > 0 and kind == "1":
        return [Finding("INSTANT_TYPE", ERROR, "project_type",
                        f"{_label('project_type')}为即办件时，{_label('promise_days')}应为 0")]
    return []


def _visit_reason(s: Mapping[str, Any]) -> list[Finding]:
    visits = s.get("visits")
    if isinstance(visits, int) and visits > 0 and _blank(s.get("visits_reason")):
        return [Finding("VISIT_NO_REASON", ERROR, "visits_reason",
                        f"{_label('visits')}大于 0 时须填写{_label('visits_reason')}")]
    return []


def _full_online_visits(s: Mapping[str, Any]) -> list[Finding]:
    codes = set(split_codes(s.get("online_depth")))
    visits = s.get("visits")
    full_online = codes >= FULL_ONLINE_CODES and bool(codes & ONLINE_RESULT_CODES)
    if full_online and isinstance(visits, int) and visits > 0:
        return [Finding("DEPTH4_VISITS", ERROR, "visits",
                        f"{_label('online_depth')}为全程网办（Ⅳ级：网上受理、办理并网上反馈结果），"
                        f"{_label('visits')}应为 0")]
    return []


def _online_url(s: Mapping[str, Any]) -> list[Finding]:
    codes = set(split_codes(s.get("online_depth")))
    if codes & {"4", "5"} and _blank(s.get("online_url")):
        return [Finding("ONLINE_NO_URL", ERROR, "online_url",
                        f"网上受理或网上办理的事项须填写{_label('online_url')}")]
    return []


def _no_online_needs_post(s: Mapping[str, Any]) -> list[Finding]:
    visits, raw = s.get("visits"), s.get("handle_forms")
    if visits != 0 or _blank(raw):
        return []
    forms = set(split_codes(raw))
    codes = set(split_codes(s.get("online_depth")))
    online = "online" in forms or bool(codes & {"2", "4"})
    if not online and not forms & {"post", "proxy", "kiosk"}:
        return [Finding("ZERO_VISITS_NO_CHANNEL", ERROR, "handle_forms",
                        f"{_label('visits')}为 0 且不能网上办理时，"
                        f"{_label('handle_forms')}须包含快递申请（邮寄）")]
    return []


def _no_fee_pay_online(s: Mapping[str, Any]) -> list[Finding]:
    if s.get("charges") is False and s.get("pay_online") is True:
        return [Finding("NO_FEE_PAY_ONLINE", ERROR, "pay_online",
                        f"{_label('charges')}为否，{_label('pay_online')}不应为是")]
    return []


def _no_fee_with_items(s: Mapping[str, Any]) -> list[Finding]:
    if s.get("charges") is False and s.get("fees"):
        return [Finding("NO_FEE_WITH_ITEMS", ERROR, "charges",
                        f"{_label('charges')}为否，但填写了{_label('fees')}")]
    return []


def _fee_name(fee: Mapping[str, Any], i: int) -> str:
    return str(fee.get("name") or f"第 {i + 1} 项")


def _fee_basis(s: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding("FEE_NO_BASIS", ERROR, f"fees[{i}].basis",
                f"{_label('fees')}“{_fee_name(fee, i)}”须填写收费依据")
        for i, fee in enumerate(s.get("fees") or [])
        if _blank(fee.get("basis"))
    ]


def _fee_amount(s: Mapping[str, Any]) -> list[Finding]:
    out = []
    for i, fee in enumerate(s.get("fees") or []):
        amount = fee.get("amount_fen")
        if isinstance(amount, int) and amount > MAX_FEE_YUAN * 100:
            out.append(Finding("FEE_IMPLAUSIBLE", ERROR, f"fees[{i}].amount_fen",
                               f"{_label('fees')}“{_fee_name(fee, i)}”的收费标准 {amount / 100:,.2f} 元超过 "
                               f"{MAX_FEE_YUAN:,} 元，请核对金额（单位：元）"))
    return out


def _fee_zero(s: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding("FEE_ZERO", WARNING, f"fees[{i}].amount_fen",
                f"{_label('fees')}“{_fee_name(fee, i)}”的收费标准为 0 元："
                "不收费的请删除该项，并将是否收费填为否")
        for i, fee in enumerate(s.get("fees") or [])
        if fee.get("amount_fen") == 0
    ]


def _copies(s: Mapping[str, Any]) -> list[Finding]:
    out = []
    for i, m in enumerate(s.get("materials") or []):
        copies = m.get("copies")
        if isinstance(copies, int) and copies < 1:
            out.append(Finding("COPIES_LT_1", ERROR, f"materials[{i}].copies",
                               f"申请材料“{m.get('name') or i + 1}”的份数应至少为 1"))
    return out


def _flag_agrees(s: Mapping[str, Any]) -> list[Finding]:
    if s.get("no_contact") and s.get("no_contact_class") not in ("full", "partial"):
        return [Finding("NO_CONTACT_FLAG_CLASS", ERROR, "no_contact",
                        f"已标记{_label('no_contact')}，但按规则判定的{_label('no_contact_class')}为“否”")]
    return []


# ---------------------------------------------------------------- required rules


def _time_limits(s: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding("REQUIRED_TIME_LIMIT", ERROR, name, f"提交前须填写{_label(name)}")
        for name in ("anticipate_days", "promise_days")
        if s.get(name) is None
    ]


def _where(s: Mapping[str, Any]) -> list[Finding]:
    if _blank(s.get("window_address")) and _blank(s.get("online_url")):
        return [Finding("REQUIRED_WHERE", ERROR, "window_address",
                        f"提交前须填写{_label('window_address')}或{_label('online_url')}")]
    return []


def _legal_basis(s: Mapping[str, Any]) -> list[Finding]:
    task_type = s.get("task_type")
    if task_type and task_type != PUBLIC_SERVICE_TYPE and _blank(s.get("legal_basis")):
        # A warning, not an error: the basis is inherited from the basic catalogue (三级四同) and the
        # department cannot edit it; the district administrator fixes it there.
        return [Finding("LEGAL_BASIS_MISSING", WARNING, "legal_basis",
                        f"行政权力事项须有{_label('legal_basis')}（{NOT_RECORDED}，请区政务办在基本目录中补充）")]
    return []


def _missing(name: str) -> Callable[[Mapping[str, Any]], list[Finding]]:
    def check(s: Mapping[str, Any]) -> list[Finding]:
        value = s.get(name)
        if _blank(value):
            return [Finding(f"MISSING_{name.upper()}", WARNING, name, f"{_label(name)}{NOT_RECORDED}")]
        return []

    return check


def _missing_contact(s: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding("MISSING_CONTACT", WARNING, name, f"{_label(name)}{NOT_RECORDED}")
        for name in ("phone", "complaint_phone")
        if _blank(s.get(name))
    ]


RULES: tuple[Rule, ...] = (
    Rule("PROMISE_GT_ANTICIPATE", ERROR,
         ("anticipate_days", "anticipate_unit", "promise_days", "promise_unit"),
         "承诺办结时限不超过法定办结时限（换算单位后比较）", _promise_within_anticipate),
    Rule("INSTANT_TYPE", ERROR, ("promise_days", "project_type"),
         "承诺时限为 0 即为即办件，即办件承诺时限为 0", _instant_project_type),
    Rule("VISIT_NO_REASON", ERROR, ("visits", "visits_reason"),
         "到办事现场次数大于 0 须说明原因", _visit_reason),
    Rule("DEPTH4_VISITS", ERROR, ("online_depth", "visits"),
         "全程网办（Ⅳ级）到办事现场次数为 0", _full_online_visits),
    Rule("ONLINE_NO_URL", ERROR, ("online_depth", "online_url"),
         "网上受理或办理须有网上办理地址", _online_url),
    Rule("ZERO_VISITS_NO_CHANNEL", ERROR, ("visits", "handle_forms", "online_depth"),
         "0 次到现场且不能网上办理的，办理形式须含快递申请", _no_online_needs_post),
    Rule("NO_FEE_PAY_ONLINE", ERROR, ("charges", "pay_online"),
         "不收费的事项不应支持网上支付", _no_fee_pay_online),
    Rule("NO_FEE_WITH_ITEMS", ERROR, ("charges", "fees"),
         "不收费的事项不应有收费项目", _no_fee_with_items),
    Rule("FEE_NO_BASIS", ERROR, ("fees",), "收费项目须有收费依据", _fee_basis),
    Rule("FEE_IMPLAUSIBLE", ERROR, ("fees",), f"收费标准不超过 {MAX_FEE_YUAN:,} 元", _fee_amount),
    Rule("FEE_ZERO", WARNING, ("fees",), "收费标准为 0 元的收费项目", _fee_zero),
    Rule("COPIES_LT_1", ERROR, ("materials",), "材料份数至少为 1", _copies),
    Rule("NO_CONTACT_FLAG_CLASS", ERROR, ("no_contact", "no_contact_class"),
         "不见面审批标记须与规则判定的类别一致", _flag_agrees),
    Rule("REQUIRED_TIME_LIMIT", ERROR, ("anticipate_days", "promise_days"),
         "提交前须填写法定和承诺办结时限", _time_limits, on_save=False),
    Rule("REQUIRED_WHERE", ERROR, ("window_address", "online_url"),
         "提交前须填写办理地点或网上办理地址", _where, on_save=False),
    Rule("LEGAL_BASIS_MISSING", WARNING, ("legal_basis",),
         "行政权力事项须有设定依据", _legal_basis, on_save=False),
    Rule("MISSING_CONTACT", WARNING, ("phone", "complaint_phone"),
         "咨询电话、监督投诉电话未填报", _missing_contact, on_save=False),
    *(
        Rule(f"MISSING_{name.upper()}", WARNING, (name,), f"{_label(name)}未填报", _missing(name),
             on_save=False)
        for name in CITIZEN_ELEMENTS
        if name not in ("phone", "complaint_phone")
    ),
)
RULE_TITLES = {rule.code: rule.title for rule in RULES}


def check_entry(
    snapshot: Mapping[str, Any], *, on_save: bool = False, changed: Iterable[str] | None = None
) -> list[Finding]:
    """Every finding of the rules on one entry snapshot.

    ``on_save``: only the value rules, and with ``changed`` only those reading a changed element.
    An entry recorded as "not applicable here" has no elements to check.
    """
    if snapshot.get("applicable") is False:
        return []
    touched = None if changed is None else set(changed)
    findings: list[Finding] = []
    for rule in RULES:
        if on_save and not rule.on_save:
            continue
        if touched is not None and not touched.intersection(rule.fields):
            continue
        findings.extend(rule.check(snapshot))
    return findings


def errors_by_field(findings: Iterable[Finding], level: str = ERROR) -> dict[str, list[str]]:
    """Findings of ``level`` as Invalid.details (field -> messages)."""
    out: dict[str, list[str]] = {}
    for f in findings:
        if f.level == level:
            out.setdefault(f.field, []).append(f.message)
    return out
