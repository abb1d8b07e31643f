"""The CPSV-AP export (reports.cpsv), built once per state of the published catalogue.

Building the document costs about 2 s of CPU (rdflib) and the URL is public, so each anonymous request
used to rebuild it. ``catalogue_stamp`` reads, in two small statements, what changes whenever the document
would: the search state token (catalog.search.state), which every write reaching a published entry
(its materials and fees included) moves, as do a department's creation and a division's names; the
count, versions and last change of the published entries (a guard, should a write go around the
services); the licence types the entries produce; and the bundles (life events). A document is kept
under the stamp it was built at, and the stamp is also its ETag, so a client that holds the current
document gets a 304 without anything being built or read beyond the stamp.

Each application holds its own ``ExportCache`` (``app.extensions[EXTENSION]``), made by
``reports.cpsv_views.register`` unless one was injected first: tests run the production path and a
second app never serves another's documents. No rdflib here: the app imports this at start-up.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from catalog.models import EntryStatus, ImplementationEntry
from catalog.search.state import index_version
from core.db import table_of
from licenses.models import LicenceType, LicenceTypeEntry
from reports.models import Bundle, BundleEntry

EXTENSION = "gaogang.reports.cpsv_cache"
# One document per format (Turtle and JSON-LD): older stamps are never asked for again once a newer
# one is read, and a document of the whole district catalogue grows with every published entry.
DEFAULT_SIZE = 2


@dataclass(frozen=True)
class CatalogueStamp:
    """What the export reads, summed up: equal stamps give the same document."""

    parts: tuple[object, ...]
    last_modified: datetime | None  # the latest change among the rows that carry a time

    def etag(self, fmt: str, base_url: str) -> str:
        """A strong entity tag of the document in ``fmt`` at this stamp (the same in every process)."""
        return hashlib.sha256(repr((fmt, base_url, self.parts)).encode()).hexdigest()[:32]


def catalogue_stamp(session: Session) -> CatalogueStamp | None:
    """The stamp of the published catalogue now; None when there is no search state row (then nothing
    may be cached, as for search answers)."""
    token = index_version(session.connection())
    if token is None:
        return None
    entry, link, kind = table_of(ImplementationEntry), table_of(LicenceTypeEntry), table_of(LicenceType)
    bundle, member = table_of(Bundle), table_of(BundleEntry)
    published = sa.and_(entry.c.status == EntryStatus.PUBLISHED.value, entry.c.applicable.is_(True))

    def scalar(column: Any, table: sa.Table, *where: Any) -> Any:
        return sa.select(column).select_from(table).where(*where).scalar_subquery()

    row = session.execute(
        sa.select(
            scalar(sa.func.count(), entry, published),
            scalar(sa.func.coalesce(sa.func.sum(entry.c.version), 0), entry, published),
            scalar(sa.func.coalesce(sa.func.sum(entry.c.id), 0), entry, published),
            scalar(sa.func.max(entry.c.updated_at), entry, published),
            scalar(sa.func.count(), link, link.c.role == "produces"),
            scalar(sa.func.coalesce(sa.func.sum(link.c.id), 0), link, link.c.role == "produces"),
            scalar(sa.func.max(kind.c.updated_at), kind),
            scalar(sa.func.count(), bundle),
            scalar(sa.func.max(bundle.c.updated_at), bundle),
            scalar(sa.func.count(), member),
        )
    ).one()
    entries_changed, kinds_changed, bundles_changed = (_aware(row[i]) for i in (3, 6, 8))
    times = [t for t in (entries_changed, kinds_changed, bundles_changed) if t is not None]
    parts = (
        token,
        *(int(v) for v in row[:3]),
        entries_changed,
        *(int(v) for v in row[4:6]),
        kinds_changed,
        int(row[7]),
        bundles_changed,
        int(row[9]),
    )
    return CatalogueStamp(parts=parts, last_modified=max(times) if times else None)


def _aware(value: object) -> datetime | None:
    """max() of a UTCDateTime column keeps the column's type; naive only should a driver drop it."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite's stored text, had the type been lost
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a time: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ExportCache:
    """Built documents by key, least recently used out first; thread-safe.

    One build at a time per process: requests that miss together (after a publish) wait for the one
    that builds and are served its document, instead of each spending the CPU again. ``size`` 0 keeps
    nothing (every request builds)."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._building = threading.Lock()
        self.hits = self.builds = 0

    def _take(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                self.hits += 1
            return value

    def get_or_build(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        found = self._take(key)
        if found is not None:
            return found
        with self._building:
            found = self._take(key)  # built by the request this one waited for
            if found is not None:
                return found
            value = build()
            with self._lock:
                self.builds += 1
                if self.size > 0:
                    self._data[key] = value
                    self._data.move_to_end(key)
                    while len(self._data) > self.size:
                        self._data.popitem(last=False)
            return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
