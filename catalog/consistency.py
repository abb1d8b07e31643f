"""三级四同 consistency: implementation entries whose inherited attributes drifted from their basic item.

The drift rule is defined here once, in Python (``values_differ``) and as the SQL expression that
means the same (``values_differ_sql``); the consistency report and the reports' drift rate both use
it. A value is *missing* when it is NULL or empty: a field missing on one side and present on the
other is drift, missing on both sides is not (nothing recorded on either side cannot disagree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.models import CatalogItem, EntryStatus, ImplementationEntry


@dataclass(frozen=True)
class Drift:
    """One entry whose inherited attributes differ from its basic item (三级四同 violation)."""

    entry_id: int
    task_code: str
    department_id: int
    status: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (entry value, item value)


# Entry attribute -> basic item attribute: the four "same" of 三级四同 an entry inherits.
DRIFT_FIELDS = (
    ("name", "name"),
    ("task_type", "task_type"),
    ("legal_basis", "legal_basis"),
    ("catalog_code", "code"),
)


def _recorded(value: Any) -> Any:
    return None if value is None or value == "" else value


def values_differ(entry_value: Any, item_value: Any) -> bool:
    """The drift rule for one field (see the module docstring for missing values)."""
    return bool(_recorded(entry_value) != _recorded(item_value))


def values_differ_sql(entry_value: Any, item_value: Any) -> Any:
    """``values_differ`` as a SQL expression (NULLIF maps empty to NULL; IS DISTINCT FROM treats two
    NULLs as equal and one NULL as different), the same on PostgreSQL and SQLite."""
    return sa.func.nullif(entry_value, "").is_distinct_from(sa.func.nullif(item_value, ""))


def drift_sql(entry: Any = ImplementationEntry, item: Any = CatalogItem) -> Any:
    """True for an entry row that drifted from its item row (any field of DRIFT_FIELDS)."""
    return sa.or_(*(values_differ_sql(getattr(entry, a), getattr(item, b)) for a, b in DRIFT_FIELDS))


def drifted_fields(entry: Any, item: Any) -> dict[str, tuple[Any, Any]]:
    """field -> (entry value, item value) for each field that drifted."""
    return {
        a: (getattr(entry, a), getattr(item, b))
        for a, b in DRIFT_FIELDS
        if values_differ(getattr(entry, a), getattr(item, b))
    }


def consistency_report(session: Session, *, include_retired: bool = False) -> list[Drift]:
    """Entries whose name, type, legal basis or basic code differ from their basic item."""
    entry_t, item_t = ImplementationEntry, CatalogItem
    stmt = select(entry_t, item_t).join(item_t, col(item_t.id) == entry_t.item_id).where(drift_sql())
    if not include_retired:
        stmt = stmt.where(entry_t.status != EntryStatus.RETIRED.value)
    out = []
    for entry, item in session.exec(stmt.order_by(col(entry_t.id))).all():
        out.append(
            Drift(
                entry.id or 0, entry.task_code, entry.department_id, entry.status, drifted_fields(entry, item)
            )
        )
    return out
