"""Queries that found nothing: counted so administrators can add aliases for them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col

from catalog.search.sql import _t
from catalog.search_models import (
    SearchMiss,
)
from core.pii import mask_personal_data
from core.types import utcnow


def log_zero_result(session: Session, query: str) -> None:
    """Count a query that found nothing (a deliberate write on a GET: administrators add aliases from it)."""
    query = mask_personal_data(query)[:100]  # people search for their own ID numbers and names
    try:
        with session.begin_nested():
            row = (
                session.execute(sa.select(SearchMiss).where(_t(SearchMiss).c.query == query))
                .scalars()
                .first()
            )
            if row is None:
                session.add(SearchMiss(query=query))
            else:
                row.count += 1
                row.last_seen = utcnow()
            session.flush()
    except (IntegrityError, OperationalError):
        # Best effort: a concurrent request logged the same miss first, or (SQLite) another writer
        # holds the lock. A lost count must never turn a search into an error.
        pass


def top_misses(session: Session, limit: int = 50) -> list[SearchMiss]:
    stmt = sa.select(SearchMiss).order_by(col(SearchMiss.count).desc(), col(SearchMiss.last_seen).desc())
    return list(session.execute(stmt.limit(limit)).scalars())
