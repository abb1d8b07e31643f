"""The no-contact rule (不见面审批): derived from an entry's data, never a free checkbox.

Standards §2 (Jiangsu 《"不见面审批"标准化指引》): the applicant does not meet the authority from
acceptance through to delivery of the result. The app turns that into four checkable conditions
on an implementation entry, plus two applicability conditions:

====  ======================================================================================
 A1   the entry is a real claim (not a "not applicable here" record)
 A2   the item is applied for by someone: 行政处罚 (02), 行政强制 (03) and 行政检查 (06) are
      started by the authority, so "no-contact application" is meaningless for them
 C1   到办事现场次数 (visits) is 0
 C2   accepted and handled online: 网上办理深度 contains both 4 (互联网受理) and 5 (互联网办理)
 C3   the result can reach the applicant without a visit: delivery includes online download,
      post or an e-licence (a window option may exist beside them; the applicant chooses)
 C4   every required material can be submitted electronically: its form is electronic or
      "paper or electronic", or an e-licence type (licence_type_code) replaces it
====  ======================================================================================

Scope decision: the flag is valid for ANY type that passes the rule (so a 公共服务 or 行政裁决
entry can be 不见面). The six 审批-like types of standards §2 (行政许可, 行政确认, 行政奖励,
行政给付, 行政征收, 其他行政权力; ``NO_CONTACT_SCOPE_TYPES``) are the scope of the 不见面率
metric, i.e. its denominator; ``in_rate_scope`` answers that question separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from catalog.models import NO_CONTACT_SCOPE_TYPES, TASK_TYPES

# Types the authority starts itself (依职权): nobody applies, so the rule cannot apply.
EX_OFFICIO_TYPES = frozenset({"02", "03", "06"})
ONLINE_DELIVERY = ("online", "post", "elicence")
ELECTRONIC_FORMS = frozenset({"electronic", "both"})


@dataclass(frozen=True)
class NoContactResult:
    """``ok`` when the entry may carry the 不见面 flag; ``failures`` names each failing condition."""

    ok: bool
    failures: list[str] = field(default_factory=list)


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


def evaluate_no_contact(entry: Any, materials: Iterable[Any]) -> NoContactResult:
    """Decide whether ``entry`` (an ImplementationEntry, or any object/dict with the same
    attribute names) with ``materials`` (Material rows or dicts) passes the 不见面审批 rule.

    Pure: no I/O. Returns every failing condition, not just the first, so an editor can fix
    them all at once.
    """
    failures: list[str] = []
    if _get(entry, "applicable", True) is False:
        failures.append("已登记为“本地不适用”的认领不能标记不见面审批")
    task_type = _get(entry, "task_type", "")
    if task_type in EX_OFFICIO_TYPES:
        failures.append(f"{TASK_TYPES.get(task_type, task_type)}为依职权事项，不适用不见面审批")

    visits = _get(entry, "visits")
    if visits is None or int(visits) != 0:
        failures.append(f"到办事现场次数须为 0 次（当前为 {visits if visits is not None else '未填写'}）")

    depth = set(split_codes(_get(entry, "online_depth", "")))
    missing = [label for code, label in (("4", "互联网受理"), ("5", "互联网办理")) if code not in depth]
    if missing:
        failures.append("网上办理深度须包含“互联网受理”和“互联网办理”（缺少：" + "、".join(missing) + "）")

    delivery = set(split_codes(_get(entry, "result_delivery", "")))
    if not delivery.intersection(ONLINE_DELIVERY):
        failures.append("办理结果须可网上下载、快递送达或以电子证照发放")

    for material in materials:
        if not _get(material, "required", True):
            continue
        if _get(material, "form", "paper") in ELECTRONIC_FORMS or _get(material, "licence_type_code"):
            continue
        failures.append(f"必要材料“{_get(material, 'name', '')}”须可电子提交或由电子证照替代")

    return NoContactResult(ok=not failures, failures=failures)


def in_rate_scope(task_type: str) -> bool:
    """Whether an entry of ``task_type`` counts in the 不见面率 denominator (the six types, §2)."""
    return task_type in NO_CONTACT_SCOPE_TYPES
