"""How long zero-result searches (search_miss) are kept, and masking of rows stored before masking.

A search box receives what people type, their own ID numbers and names included. New misses are
masked when they are recorded (``core.pii.mask_personal_data`` in ``log_zero_result``); this
module enforces the retention period (``SEARCH_MISS_RETENTION_DAYS``, 90 days by default: enough
to see which words people keep missing) and masks rows recorded before masking existed. Run it
daily (``flask search purge-misses``, e.g. from cron: ``15 3 * * * flask search purge-misses``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from catalog.search_models import SearchMiss
from core.db import table_of
from core.pii import mask_personal_data
from core.types import utcnow


@dataclass(frozen=True)
class PurgeResult:
    deleted: int
    masked: int


def purge_search_misses(session: Session, retention_days: int, now: datetime | None = None) -> PurgeResult:
    """Delete misses last seen more than ``retention_days`` ago, and mask personal data in the rest.

    Masking can make two rows equal (two ID numbers of the same area and tail): they are merged,
    counts added, first and last seen widened. Flushes; the caller commits."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    table = table_of(SearchMiss)
    outcome = session.execute(sa.delete(table).where(table.c.last_seen < cutoff))
    deleted = getattr(outcome, "rowcount", 0) or 0  # a CursorResult for DELETE
    masked = 0
    for miss in list(session.execute(sa.select(SearchMiss)).scalars()):
        clean = mask_personal_data(miss.query)[:100]
        if clean == miss.query:
            continue
        masked += 1
        same = session.execute(sa.select(SearchMiss).where(table.c.query == clean)).scalars().first()
        if same is None:
            miss.query = clean
        else:
            same.count += miss.count
            same.first_seen = min(same.first_seen, miss.first_seen)
            same.last_seen = max(same.last_seen, miss.last_seen)
            session.delete(miss)
        session.flush()
    return PurgeResult(deleted=deleted, masked=masked)
