"""What staff read about changes: Chinese labels, formatted values and China time, in one place.

The history page (versions and audit rows) and the review diff (a revision or a submitted draft
against the published version) both format through this module, so a field reads the same
everywhere: labels from catalog/elements.py, coded values by their vocabulary's label, amounts in
元, lists joined, booleans 是/否, a value nobody recorded as 未填报, times in China time. A key this
module does not know falls back to the label maps and then to the key itself, never to a repr.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from catalog.elements import (
    DEPTH_LEVELS,
    FAQ_LABELS,
    FEE_LABELS,
    FIELD_LABELS,
    HANDLE_AREAS,
    HANDLE_FORMS,
    HANDLE_ITEMS,
    MATERIAL_LABELS,
    MATERIAL_ORIGINALS,
    MATERIAL_SOURCES,
    NO_CONTACT_CLASSES,
    NOT_RECORDED,
    POWER_SOURCES,
    RESULT_TYPES,
    SERVICE_OBJECTS,
    STEP_LABELS,
    SUBJECT_NATURES,
)
from catalog.models import (
    ENTRY_STATUS_LABELS,
    MATERIAL_FORMS,
    ONLINE_DEPTH,
    PROJECT_TYPES,
    RESULT_DELIVERY,
    TASK_TYPES,
    TIME_UNITS,
    USE_LEVELS,
)
from catalog.revision_models import REVISION_STATUS_LABELS
from core.types import CHINA_TZ

NONE_LISTED = "无"
TIME_FORMAT = "%Y-%m-%d %H:%M"

# Child lists of an entry and the labels of their rows' fields.
CHILD_LABELS: dict[str, Mapping[str, str]] = {
    "materials": MATERIAL_LABELS,
    "fees": FEE_LABELS,
    "steps": STEP_LABELS,
    "faqs": FAQ_LABELS,
}

STATUS_LABELS: dict[str, str] = {
    **{k: v for k, v in REVISION_STATUS_LABELS.items()},
    **{s.value: label for s, label in ENTRY_STATUS_LABELS.items()},
}

# Coded elements: key -> vocabulary. MULTI_CODED keys hold several codes, comma-separated.
VOCABULARIES: dict[str, Mapping[Any, str]] = {
    "task_type": TASK_TYPES,
    "level": USE_LEVELS,
    "status": STATUS_LABELS,
    "anticipate_unit": TIME_UNITS,
    "promise_unit": TIME_UNITS,
    "unit": TIME_UNITS,
    "project_type": PROJECT_TYPES,
    "online_depth": ONLINE_DEPTH,
    "result_delivery": RESULT_DELIVERY,
    "form": MATERIAL_FORMS,
    "subject_nature": SUBJECT_NATURES,
    "power_source": POWER_SOURCES,
    "handle_item": HANDLE_ITEMS,
    "service_objects": SERVICE_OBJECTS,
    "handle_forms": HANDLE_FORMS,
    "no_contact_class": NO_CONTACT_CLASSES,
    "depth_level": DEPTH_LEVELS,
    "handle_area": HANDLE_AREAS,
    "result_type": RESULT_TYPES,
    "source_channel": MATERIAL_SOURCES,
    "original": MATERIAL_ORIGINALS,
}
MULTI_CODED = frozenset({"online_depth", "result_delivery", "service_objects", "handle_forms"})
MONEY_KEYS = frozenset({"amount_fen"})

# Keys of audit rows and settings that are not elements of an entry.
OTHER_LABELS: dict[str, str] = {
    "revision_id": "修订编号",
    "base_version": "基于版本",
    "payload": "修订内容",
    "four_eyes": "双人审核",
    "task_code": "实施编码",
    "item_id": "基本目录事项",
    "reason": "理由",
    "reject_reason": "退回理由",
    "align": "按上级目录更新三级四同",
    "competence_override": "超出主管部门认领",
}

# Inherited from the basic item or fixed at the claim: not the department's content, shown apart on the
# entry page; a first submission's diff leaves them out.
INHERITED = frozenset(
    {"name", "task_type", "legal_basis", "catalog_code", "task_code", "applicable", "not_applicable_reason"}
)

# Bookkeeping of a snapshot that a reviewer does not compare (the body and place never change).
NOT_COMPARED = frozenset(
    {
        "id",
        "entry_id",
        "item_id",
        "department_id",
        "division_code",
        "level",
        "version",
        "status",
        "created_at",
        "updated_at",
        "published_at",
        "reject_reason",
    }
)
ROW_NOT_COMPARED = frozenset({"id", "entry_id", "position"})

ACTION_LABELS: dict[str, str] = {
    "entry.claim": "认领",
    "entry.decline": "登记本地不适用",
    "entry.update": "修改实施要素",
    "entry.no_contact": "不见面审批标记",
    "entry.align": "按基本目录更新",
    "entry.submit": "提交审核",
    "entry.approve": "审核通过并发布",
    "entry.reject": "退回修改",
    "entry.retire": "停用",
    "entry.reopen": "重新打开",
    "entry.withdraw_claim": "撤回认领",
    "entry.revise": "修订发布（要素变更）",
    "entry.revision.open": "发起修订",
    "entry.revision.update": "保存修订",
    "entry.revision.submit": "提交修订审核",
    "entry.revision.withdraw": "撤回修订",
    "entry.revision.reject": "退回修订",
    "entry.revision.approve": "修订审核通过并发布",
    "settings.four_eyes": "修改双人审核设置",
}


def label(key: str, within: str | None = None) -> str:
    """The Chinese label of ``key`` (a field of a ``within`` child row when given); the key itself
    when no label map knows it."""
    if within is not None and key in CHILD_LABELS.get(within, {}):
        return CHILD_LABELS[within][key]
    if key in FIELD_LABELS:
        return FIELD_LABELS[key]
    if key in OTHER_LABELS:
        return OTHER_LABELS[key]
    for labels in CHILD_LABELS.values():
        if key in labels:
            return labels[key]
    return key


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action, action)


def china_time(value: datetime | str | None) -> str:
    """A timestamp in China time (``2026-11-30 18:05``); 未填报 when there is none."""
    if value is None or value == "":
        return NOT_RECORDED
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        return moment.strftime(TIME_FORMAT)  # only aware times are stored; never guess a zone
    return moment.astimezone(CHINA_TZ).strftime(TIME_FORMAT)


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:,.2f} 元"


def _code(vocabulary: Mapping[Any, str], code: Any) -> str:
    if code in vocabulary:
        return vocabulary[code]
    text = str(code)
    if text in vocabulary:
        return vocabulary[text]
    if text.isdigit() and int(text) in vocabulary:
        return vocabulary[int(text)]
    return text


def row_title(row: Mapping[str, Any], within: str | None = None) -> str:
    """A short name for a child row: its name or question, else its first text value."""
    for key in ("name", "question"):
        if row.get(key):
            title = str(row[key])
            if within == "fees" and isinstance(row.get("amount_fen"), int):
                title += f"（{yuan(row['amount_fen'])}）"
            return title
    for value in row.values():
        if isinstance(value, str) and value:
            return value
    return "（未命名）"


def format_value(key: str, value: Any, within: str | None = None) -> str:
    """``value`` of element ``key`` as staff read it."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return NOT_RECORDED
    if isinstance(value, bool):
        return "是" if value else "否"
    if key in MONEY_KEYS and isinstance(value, int):
        return yuan(value)
    if key in VOCABULARIES:
        vocabulary = VOCABULARIES[key]
        if key in MULTI_CODED and isinstance(value, str):
            codes = [c.strip() for c in value.split(",") if c.strip()]
            return "、".join(_code(vocabulary, c) for c in codes) or NOT_RECORDED
        if isinstance(value, list | tuple):
            return "、".join(_code(vocabulary, c) for c in value) or NONE_LISTED
        return _code(vocabulary, value)
    if isinstance(value, datetime) or (key.endswith("_at") and isinstance(value, str)):
        return china_time(value)
    if isinstance(value, list | tuple):
        if not value:
            return NONE_LISTED
        if all(isinstance(v, Mapping) for v in value):
            return "；".join(row_title(v, key) for v in value)
        return "、".join(format_value(key, v) for v in value)
    if isinstance(value, Mapping):
        parts = [f"{label(k, key)}：{format_value(k, v, key)}" for k, v in value.items()]
        return "；".join(parts) or NONE_LISTED
    return str(value)


# ---------------------------------------------------------------- comparing two states


@dataclass(frozen=True)
class RowChange:
    """One row of a child list that was added, removed or changed."""

    kind: str  # added / removed / changed
    title: str
    fields: list[tuple[str, str, str]]  # (label, old, new)

    @property
    def kind_label(self) -> str:
        return {"added": "新增", "removed": "删除", "changed": "修改"}[self.kind]


@dataclass(frozen=True)
class Change:
    """One changed element: formatted old and new values, and for a child list the rows."""

    key: str
    label: str
    old: str
    new: str
    rows: list[RowChange] = field(default_factory=list)


def _ordered_keys(*states: Mapping[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for state in states:
        for key in state:
            seen.setdefault(key, None)
    order = {k: i for i, k in enumerate(FIELD_LABELS)}
    return sorted(seen, key=lambda k: (order.get(k, len(order)), k))


def _row_fields(old: Mapping[str, Any], new: Mapping[str, Any], within: str) -> list[tuple[str, str, str]]:
    out = []
    for key in _ordered_row_keys(old, new, within):
        before, after = format_value(key, old.get(key), within), format_value(key, new.get(key), within)
        if before != after:
            out.append((label(key, within), before, after))
    return out


def _ordered_row_keys(old: Mapping[str, Any], new: Mapping[str, Any], within: str) -> list[str]:
    order = {k: i for i, k in enumerate(CHILD_LABELS.get(within, {}))}
    keys = {k for k in (*old, *new) if k not in ROW_NOT_COMPARED}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))


def _match_key(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> str | None:
    """The row field that names each row once on both sides (name, else question), if any."""
    for key in ("name", "question"):
        if all(
            all(r.get(key) for r in rows) and len({r.get(key) for r in rows}) == len(rows)
            for rows in (old, new)
        ):
            return key
    return None


def diff_rows(
    old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]], within: str
) -> list[RowChange]:
    """Row changes of a child list: rows are matched by name (or question) when it is unique on both
    sides, else by position."""
    key = _match_key(old, new)
    changes: list[RowChange] = []
    if key is not None:
        old_by = {r[key]: r for r in old}
        new_by = {r[key]: r for r in new}
        pairs = [(old_by.get(k), new_by.get(k)) for k in dict.fromkeys([*old_by, *new_by])]
    else:
        pairs = [
            (old[i] if i < len(old) else None, new[i] if i < len(new) else None)
            for i in range(max(len(old), len(new)))
        ]
    for before, after in pairs:
        if before is None and after is not None:
            changes.append(RowChange("added", row_title(after, within), _row_fields({}, after, within)))
        elif after is None and before is not None:
            changes.append(RowChange("removed", row_title(before, within), _row_fields(before, {}, within)))
        elif before is not None and after is not None:
            fields = _row_fields(before, after, within)
            if fields:
                changes.append(RowChange("changed", row_title(after, within), fields))
    return changes


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


def diff_states(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Change]:
    """Field-by-field changes from ``old`` to ``new`` (entry snapshots, or a snapshot and a proposed
    state), in the order of the element set. ``old`` None compares with an entry nobody recorded."""
    before = old or {}
    skip = NOT_COMPARED | INHERITED if old is None else NOT_COMPARED
    changes: list[Change] = []
    for key in _ordered_keys(before, new):
        if key in skip:
            continue
        a, b = before.get(key), new.get(key)
        if _is_rows(a or []) and _is_rows(b or []) and (a or b):
            rows = diff_rows(list(a or []), list(b or []), key)
            if rows:
                changes.append(Change(key, label(key), format_value(key, a), format_value(key, b), rows))
            continue
        old_text, new_text = format_value(key, a), format_value(key, b)
        if old_text != new_text:
            changes.append(Change(key, label(key), old_text, new_text))
    return changes


def audit_changes(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    names: Mapping[str, Mapping[Any, str]] | None = None,
) -> list[Change]:
    """The old → new values of an audit row, labelled and formatted (a key only in ``new`` has no
    old value: ``old`` is then empty). ``names`` turns ids into names, as in
    ``{"department_id": {3: "区民政局"}}``."""
    before, after = old or {}, new or {}
    lookups = names or {}

    def text(key: str, value: Any) -> str:
        if key in lookups and value in lookups[key]:
            return lookups[key][value]
        return format_value(key, value)

    out = []
    for key in _ordered_keys(after, before):
        old_text = text(key, before[key]) if key in before else ""
        new_text = text(key, after[key]) if key in after else ""
        out.append(Change(key, label(key), old_text, new_text))
    return out


def version_changes(snapshots: Iterable[Mapping[str, Any]]) -> list[list[Change]]:
    """For each snapshot in order, its changes against the one before (the first against nothing)."""
    out: list[list[Change]] = []
    previous: Mapping[str, Any] | None = None
    for snapshot in snapshots:
        out.append(diff_states(previous, snapshot) if previous is not None else [])
        previous = snapshot
    return out
