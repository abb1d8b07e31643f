"""What /verify shows of a licence, read with one Core select and kept per process for a short time.

Issue 15 lets the status lists and /verify agree "within one minute of a change". The status lists are
served with ``max-age=30``; this cache keeps a licence's public facts for at most ``TTL_SECONDS`` (30 s),
so a verification in any process shows a status change at most 30 s after it is committed, and the
two never disagree for longer than that. A change made through this process (any flush of a ``Licence``
row by the app's sessions) drops the entry at once, so the clerk who revokes a licence sees it revoked
on the next check. Nothing personal is cached: the masked holder comes from the signed token.

Without it every /verify loaded the whole ``Licence`` through the ORM (about 2 ms of the 4.4 ms a check
cost, see docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, col

from licenses.models import Licence

# At most this long between a committed status change and every /verify showing it (issue 15: one minute).
TTL_SECONDS = 30.0
# Entries kept per process; beyond it the cache starts again (a district holds ~140,000 licences a year,
# the set verified within half a minute is far smaller).
MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class LicenceFacts:
    """The columns of a licence the public verification shows and computes its status from."""

    id: int
    identifier: str
    type_name: str
    number: str
    issuer_name: str
    valid_from: date
    valid_to: date | None
    status: str
    status_date: date | None
    status_category: str | None


_COLUMNS = (
    col(Licence.id),
    col(Licence.identifier),
    col(Licence.type_name),
    col(Licence.number),
    col(Licence.issuer_name),
    col(Licence.valid_from),
    col(Licence.valid_to),
    col(Licence.status),
    col(Licence.status_date),
    col(Licence.status_category),
)


def read_facts(session: Session, licence_id: int) -> LicenceFacts | None:
    row = session.execute(sa.select(*_COLUMNS).where(col(Licence.id) == licence_id)).first()
    return None if row is None else LicenceFacts(*row)


class FactsCache:
    """Per-process cache of ``LicenceFacts`` by licence id, each entry good for ``ttl`` seconds.

    Misses (no such licence) are not kept: a token can only name a licence that exists once signed,
    so a miss is a forged or foreign id and costs its sender the database read."""

    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[int, tuple[float, LicenceFacts]] = {}
        self._lock = threading.Lock()

    def get(self, session: Callable[[], Session], licence_id: int) -> LicenceFacts | None:
        """The facts of a licence; ``session`` is called for the database read of a miss only."""
        now = self._clock()
        hit = self._entries.get(licence_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        facts = read_facts(session(), licence_id)
        if facts is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
                self._entries[licence_id] = (now + self.ttl, facts)
        return facts

    def forget(self, licence_id: int) -> None:
        with self._lock:
            self._entries.pop(licence_id, None)

    def follow_changes(self, factory: sessionmaker[Session]) -> None:
        """Drop the entry of every licence that a session made by ``factory`` changes: at the flush, and
        again after the commit (a check in another thread between the two may have read the old row)."""

        def _after_flush(session: OrmSession, _context: Any) -> None:
            for obj in session.dirty:
                if isinstance(obj, Licence) and obj.id is not None:
                    self.forget(obj.id)
                    session.info.setdefault(_CHANGED, set()).add(obj.id)

        def _after_commit(session: OrmSession) -> None:
            for licence_id in session.info.pop(_CHANGED, ()):
                self.forget(licence_id)

        def _after_rollback(session: OrmSession) -> None:
            session.info.pop(_CHANGED, None)

        event.listen(factory, "after_flush", _after_flush)
        event.listen(factory, "after_commit", _after_commit)
        event.listen(factory, "after_soft_rollback", lambda session, _previous: _after_rollback(session))


_CHANGED = "licences.changed_ids"  # session.info key: ids of licences changed in this transaction
