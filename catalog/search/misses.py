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
    """Count a query that found nothing (a deliberate write on a GET: administrators add aliases from it).

    A query seen before (the usual case: a cached answer that found nothing is counted on every request)
    costs one UPDATE (on PostgreSQL committed without waiting for the WAL flush); only a new query takes
    a savepoint and an insert. Formerly each count loaded the row into the ORM and flushed it inside a
    savepoint: five statements per request (issue 14 item 10). The UPDATE runs outside a savepoint: a
    one-row UPDATE under READ COMMITTED only waits for a concurrent one (no deadlock with one row per
    transaction), and SQLite's "database is locked" fails the statement, not the transaction.
    """
    query = mask_personal_data(query)[:100]  # people search for their own ID numbers and names
    m = _t(SearchMiss)
    conn = session.connection()
    try:
        if conn.dialect.name == "postgresql":
            # A count lost in a crash is only a count: the search's commit need not wait for the WAL
            # flush (a disk write per request on a GET; the request writes nothing else).
            conn.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
        counted = conn.execute(
            sa.update(m).where(m.c.query == query).values(count=m.c.count + 1, last_seen=utcnow())
        )
        if counted.rowcount:
            return
        with session.begin_nested():
            session.add(SearchMiss(query=query))
            session.flush()
    except (IntegrityError, OperationalError):
        # Best effort: a concurrent request logged the same miss first, or (SQLite) another writer
        # holds the lock. A lost count must never turn a search into an error.
        pass


def top_misses(session: Session, limit: int = 50) -> list[SearchMiss]:
    stmt = sa.select(SearchMiss).order_by(col(SearchMiss.count).desc(), col(SearchMiss.last_seen).desc())
    return list(session.execute(stmt.limit(limit)).scalars())
