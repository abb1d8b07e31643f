"""The no-contact rule (不见面审批) and the online depth level (网上办理深度 Ⅰ–Ⅳ), derived from an entry's
data, never entered.

Standards §2 (Jiangsu 《"不见面审批"标准化指引》): the applicant does not meet the authority from the
application to the result, by the online hall (or a mobile terminal), a self-service terminal
(自助终端), post (邮寄) or a full proxy (全程代办); 部分不见面 allows at most one meeting, and the
entry records which step needs it. The scope is the six 审批-like power types.

The rule counts the meetings the recorded data implies and compares them with the recorded visits:

====  ======================================================================================
 A1   the entry is a real claim (not a "not applicable here" record)
 A2   the type is one of the six of the scope (行政许可, 行政确认, 行政奖励, 行政给付, 行政征收,
      其他行政权力; ``NO_CONTACT_SCOPE_TYPES``)
 C1   到办事现场次数 is recorded: 0 for 全程不见面; 1 with the step that needs it (meeting_step)
      for 部分不见面
 C2   the application needs no meeting: 办理形式 includes 网上办理 (with 互联网受理 among the
      depth codes), 自助终端, 邮寄 or 全程代办
 C3   every required material can be handed in without a meeting: electronic ("electronic" or
      "both"), replaced by an e-licence type, or the application goes by post or proxy (paper
      travels with it)
 C4   the result reaches the applicant without a meeting: 网上下载, 快递送达, 电子证照 (only when
      the entry produces a licence type: the licence catalogue links the type to this 实施编码),
      or 全程代办 (the agent collects it)
====  ======================================================================================

Failing C2 or C3 costs one meeting (at the application), failing C4 one more (at the result).
全程不见面: A1, A2, C1 with 0 visits, and no meeting implied. 部分不见面: A1, A2, one visit with its
step recorded, and at most one meeting implied. Otherwise 否. Unknown is never a pass: a visit count,
办理形式, delivery, material form or licence link that nobody recorded fails its condition.

The ``no_contact`` flag on the entry is the department's declaration that the item is offered as
不见面审批 (the portal badge, the province's 不见面 list, the 不见面率 numerator). It may be set only
while the derived class is 全程不见面 or 部分不见面 (``NoContactResult.ok``), and a save that would
leave a flagged entry at 否 is refused; the class itself is stored on every save
(``no_contact_class``) and shown beside the flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.elements import NO_CONTACT_CLASSES
from catalog.models import NO_CONTACT_SCOPE_TYPES, TASK_TYPES

FULL, PARTIAL, NONE = "full", "partial", "none"
ELECTRONIC_FORMS = frozenset({"electronic", "both"})
# 办理形式 that reach the authority without meeting it, and those that also carry paper materials.
NO_MEETING_FORMS = ("online", "kiosk", "post", "proxy")
PAPER_CARRYING_FORMS = frozenset({"post", "proxy"})
NO_MEETING_DELIVERY = ("online", "post")
ONLINE_ACCEPTANCE = "4"  # 互联网受理


@dataclass(frozen=True)
class NoContactResult:
    """The rule's verdict.

    ``klass`` is full / partial / none (``NO_CONTACT_CLASSES``); ``ok`` is whether the entry may carry
    the 不见面 flag (full or partial). ``failures`` lists every condition that keeps the entry from
    全程不见面, ``partial_failures`` every condition that keeps it from 部分不见面 (empty when it is
    full or partial): the refusal message of the flag is ``partial_failures``.
    """

    ok: bool
    failures: list[str] = field(default_factory=list)
    klass: str = NONE
    partial_failures: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return NO_CONTACT_CLASSES[self.klass]


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def split_codes(value: str | Iterable[str] | None) -> list[str]:
    """'4,5, 6' or ['4', '5'] -> ['4', '5', '6'] (order kept, blanks dropped)."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [p.strip() for p in parts if p and p.strip()]


def evaluate_no_contact(
    entry: Any, materials: Iterable[Any], produces_licence: bool | None = None
) -> NoContactResult:
    """Classify ``entry`` (an ImplementationEntry, a snapshot dict, or any object with the same names)
    with its ``materials`` (Material rows or dicts) as 全程不见面 / 部分不见面 / 否.

    ``produces_licence``: whether the licence catalogue names this entry as producing a licence type
    (None: not known, so e-licence delivery does not count). Pure: no I/O. Every failing condition is
    returned, not just the first, so an editor can fix them all at once.
    """
    scope: list[str] = []  # A1, A2: fail every class
    if _get(entry, "applicable", True) is False:
        scope.append("已登记为“本地不适用”的认领不适用不见面审批")
    task_type = _get(entry, "task_type")
    if task_type not in NO_CONTACT_SCOPE_TYPES:
        label = TASK_TYPES.get(task_type or "", task_type or "未填报")
        scope.append(
            f"事项类型为{label}：不见面审批仅适用于行政许可、行政确认、行政奖励、行政给付、行政征收和其他行政权力"
        )

    # C2, C3: the application.
    apply_failures: list[str] = []
    raw_forms = _get(entry, "handle_forms")
    forms = set(split_codes(raw_forms))
    depth = set(split_codes(_get(entry, "online_depth")))
    if raw_forms is None or not forms:
        apply_failures.append("办理形式未填报，无法判断申请是否需要见面")
    else:
        means = [f for f in NO_MEETING_FORMS if f in forms]
        if means == ["online"] and ONLINE_ACCEPTANCE not in depth:
            apply_failures.append("办理形式仅有网上办理，但网上办理深度不含“互联网受理”")
        elif not means:
            apply_failures.append(
                "办理形式须包含网上办理、自助终端、快递申请（邮寄）或全程代办之一（当前仅窗口办理）"
            )
    carries_paper = bool(forms & PAPER_CARRYING_FORMS)
    for material in materials:
        required = _get(material, "required", True)
        if required is False:
            continue
        form = _get(material, "form")
        if form in ELECTRONIC_FORMS or _get(material, "licence_type_code") or (carries_paper and form):
            continue
        name = _get(material, "name", "") or "（未命名）"
        if form is None:
            apply_failures.append(f"必要材料“{name}”的材料形式未填报")
        else:
            apply_failures.append(f"必要材料“{name}”须可电子提交、由电子证照替代，或随邮寄、代办递交")

    # C4: the result.
    result_failures: list[str] = []
    delivery = set(split_codes(_get(entry, "result_delivery")))
    if not delivery:
        result_failures.append("结果送达方式未填报")
    elif not (delivery & set(NO_MEETING_DELIVERY)) and "proxy" not in forms:
        if "elicence" in delivery and produces_licence is not True:
            result_failures.append(
                "结果送达方式为电子证照，但证照目录中没有由本事项（实施编码）产生的证照类型"
                if produces_licence is False
                else "结果送达方式为电子证照，但未能核对本事项是否产生证照类型"
            )
        elif "elicence" not in delivery:
            result_failures.append("办理结果须可网上下载、快递送达、以电子证照发放或由代办人领取")

    implied = (1 if apply_failures else 0) + (1 if result_failures else 0)
    visits = _get(entry, "visits")
    meeting_step = (_get(entry, "meeting_step") or "").strip()

    full = list(scope) + apply_failures + result_failures
    if visits is None:
        full.append("到办事现场次数未填报")
    elif visits != 0:
        full.append(f"全程不见面须到办事现场 0 次（当前为 {visits} 次）")

    partial = list(scope)
    if visits is None:
        partial.append("到办事现场次数未填报")
    elif visits > 1:
        partial.append(f"部分不见面最多见面一次（当前到办事现场 {visits} 次）")
    if visits == 1 and not meeting_step:
        partial.append("部分不见面须填写需见面的环节")
    if implied > 1:
        partial.append("申请和取得结果都需要见面：" + "；".join(apply_failures + result_failures))
    elif implied == 1 and visits == 0:
        partial.append("到办事现场次数为 0，但" + "；".join(apply_failures + result_failures))

    if not full:
        return NoContactResult(ok=True, failures=[], klass=FULL, partial_failures=[])
    if not partial and visits == 1:
        return NoContactResult(ok=True, failures=full, klass=PARTIAL, partial_failures=[])
    return NoContactResult(ok=False, failures=full, klass=NONE, partial_failures=partial or full)


def derive_depth_level(online_depth: str | Iterable[str] | None, visits: int | None) -> int | None:
    """网上办理深度 Ⅰ–Ⅳ from the depth codes and the visits (standards §2).

    Ⅳ 全程网办: accepted (4) and handled (5) online, the result returned online (6 or 7), and 0 visits;
    Ⅲ: pre-examined (3), accepted (4) or handled (5) online; Ⅱ: forms received online (2);
    Ⅰ: only information (1) or "other" (8). No codes recorded: None (未填报). Unknown visits never
    give Ⅳ.
    """
    codes = set(split_codes(online_depth))
    if not codes:
        return None
    if {"4", "5"} <= codes and codes & {"6", "7"} and visits == 0:
        return 4
    if codes & {"3", "4", "5"}:
        return 3
    if "2" in codes:
        return 2
    return 1


def in_rate_scope(task_type: str) -> bool:
    """Whether an entry of ``task_type`` counts in the 不见面率 denominator (the six types, §2)."""
    return task_type in NO_CONTACT_SCOPE_TYPES


__all__ = [
    "FULL",
    "NONE",
    "PARTIAL",
    "NoContactResult",
    "derive_depth_level",
    "evaluate_no_contact",
    "in_rate_scope",
    "split_codes",
]
