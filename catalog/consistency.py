"""三级四同 consistency: implementation entries whose 名称, 类型, 设定依据 or 基本编码 differ from the
upper-level (province or city) basic item their district item points to.

The comparison is with the upper level's item as imported (``catalog.upper``), never with the
district's own basic item, which an administrator can edit: editing the local copy cannot hide a
drift. An entry whose basic item points to no upper item cannot be checked; ``coverage`` counts
those, and the report page says so instead of calling them consistent.

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

from catalog.models import UPPER_LEVELS, CatalogItem, EntryStatus, ImplementationEntry, UpperCatalogItem


@dataclass(frozen=True)
class Drift:
    """One entry whose inherited attributes differ from the upper-level item (三级四同 violation)."""

    entry_id: int
    task_code: str
    department_id: int
    status: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (entry value, upper value)
    upper_level: str | None = None  # UPPER_LEVELS key
    upper_code: str | None = None


# Entry attribute -> upper item attribute: the four "same" of 三级四同.
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


def drift_sql(entry: Any = ImplementationEntry, upper: Any = UpperCatalogItem) -> Any:
    """True for an entry row that drifted from its upper item row (any field of DRIFT_FIELDS).

    ``upper`` is outer-joined through ``CatalogItem.upper_item_id``; with no upper item the entry
    cannot be checked and this is False."""
    return sa.and_(
        col(upper.id).is_not(None),
        sa.or_(*(values_differ_sql(getattr(entry, a), getattr(upper, b)) for a, b in DRIFT_FIELDS)),
    )


def drifted_fields(entry: Any, upper: Any) -> dict[str, tuple[Any, Any]]:
    """field -> (entry value, upper value) for each field that drifted."""
    return {
        a: (getattr(entry, a), getattr(upper, b))
        for a, b in DRIFT_FIELDS
        if values_differ(getattr(entry, a), getattr(upper, b))
    }


def consistency_report(session: Session, *, include_retired: bool = False) -> list[Drift]:
    """Entries whose name, type, legal basis or basic code differ from their upper-level item."""
    entry_t, item_t, upper_t = ImplementationEntry, CatalogItem, UpperCatalogItem
    stmt = (
        select(entry_t, upper_t)
        .join(item_t, col(item_t.id) == entry_t.item_id)
        .join(upper_t, col(upper_t.id) == item_t.upper_item_id)
        .where(drift_sql(entry_t, upper_t))
    )
    if not include_retired:
        stmt = stmt.where(entry_t.status != EntryStatus.RETIRED.value)
    out = []
    for entry, upper in session.exec(stmt.order_by(col(entry_t.id))).all():
        out.append(
            Drift(
                entry.id or 0,
                entry.task_code,
                entry.department_id,
                entry.status,
                drifted_fields(entry, upper),
                upper.level,
                upper.code,
            )
        )
    return out


def coverage(session: Session, *, include_retired: bool = False) -> dict[str, Any]:
    """What the report can check: the upper items per level (with their files and provenance), and
    how many entries point (through their basic item) to an upper item and how many do not."""
    levels = []
    for level, label in UPPER_LEVELS.items():
        rows = session.execute(
            sa.select(col(UpperCatalogItem.source_file), col(UpperCatalogItem.provenance), sa.func.count())
            .where(col(UpperCatalogItem.level) == level)
            .group_by(col(UpperCatalogItem.source_file), col(UpperCatalogItem.provenance))
        ).all()
        levels.append(
            {
                "level": level,
                "label": label,
                "items": sum(r[2] for r in rows),
                "sources": [{"file": f, "provenance": p, "items": n} for f, p, n in rows],
            }
        )
    base = (
        sa.select(sa.func.count())
        .select_from(ImplementationEntry)
        .join(CatalogItem, col(CatalogItem.id) == ImplementationEntry.item_id)
    )
    if not include_retired:
        base = base.where(col(ImplementationEntry.status) != EntryStatus.RETIRED.value)
    linked = session.execute(base.where(col(CatalogItem.upper_item_id).is_not(None))).scalar_one()
    unlinked = session.execute(base.where(col(CatalogItem.upper_item_id).is_(None))).scalar_one()
    return {"levels": levels, "entries_checked": int(linked), "entries_unchecked": int(unlinked)}
