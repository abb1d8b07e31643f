"""三级四同 consistency: implementation entries whose inherited attributes drifted from their basic item."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.models import (
    CatalogItem,
    EntryStatus,
    ImplementationEntry,
)


@dataclass(frozen=True)
class Drift:
    """One entry whose inherited attributes differ from its basic item (三级四同 violation)."""

    entry_id: int
    task_code: str
    department_id: int
    status: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (entry value, item value)


DRIFT_FIELDS = (
    ("name", "name"),
    ("task_type", "task_type"),
    ("legal_basis", "legal_basis"),
    ("catalog_code", "code"),
)


def consistency_report(session: Session, *, include_retired: bool = False) -> list[Drift]:
    """Entries whose name, type, legal basis or basic code differ from their basic item."""
    entry_t, item_t = ImplementationEntry, CatalogItem
    differs = sa.or_(*(getattr(entry_t, a) != getattr(item_t, b) for a, b in DRIFT_FIELDS))
    stmt = select(entry_t, item_t).join(item_t, col(item_t.id) == entry_t.item_id).where(differs)
    if not include_retired:
        stmt = stmt.where(entry_t.status != EntryStatus.RETIRED.value)
    out = []
    for entry, item in session.exec(stmt.order_by(col(entry_t.id))).all():
        fields = {
            a: (getattr(entry, a), getattr(item, b))
            for a, b in DRIFT_FIELDS
            if getattr(entry, a) != getattr(item, b)
        }
        out.append(Drift(entry.id or 0, entry.task_code, entry.department_id, entry.status, fields))
    return out
