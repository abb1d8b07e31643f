"""The reconciliation baseline kept on write (对账基线): each licence's latest non-skipped change
(licence_recon_latest) and per (issuer, day) count and digest sum (licence_recon_day, a log of deltas).

Maintained in the transaction that writes the outbox (licenses.outbox, licenses.bulk) or skips a row
of it (licenses.sync_admin), so a reconciliation that finds nothing different reads one row per day
instead of the whole outbox, and reads licences only for the days whose digests differ
(licenses.reconcile_tree). A change made to the outbox behind these writers' back (SQL by hand, a
restore of one table) is not seen by them: ``rebuild`` recomputes both tables from the outbox and
counts what had drifted; the reconciliation runs it when asked for a full verification.

A row hash is split into two unsigned 32-bit halves, so a sum over 30M licences stays below 2**63 on
both databases and a node's digest is ``(sum(hi) << 32) + sum(lo)`` modulo 2**64.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.db import table_of
from licenses import reconcile_tree as tree
from licenses.models import Licence, LicenceOutbox
from licenses.sync import SKIPPED, change_rank, licence_key
from licenses.sync_models import ReconDay, ReconLatest

LATEST = table_of(ReconLatest)
DAYS = table_of(ReconDay)
_OUTBOX = table_of(LicenceOutbox)
_MOD = 1 << 64
_CHUNK = 500


def halves(identifier: str, revision: int, status: str) -> tuple[int, int]:
    """The row hash (reconcile_tree.row_hash) as unsigned (high 32 bits, low 32 bits)."""
    u = tree.row_hash(identifier, revision, status) % _MOD
    return u >> 32, u & 0xFFFFFFFF


@dataclass(frozen=True)
class Change:
    """One outbox row as the baseline sees it."""

    idem_key: str
    identifier: str
    revision: int
    lstatus: str
    issuer_code: str
    day: str

    @classmethod
    def of_outbox(cls, row: Any) -> Change:
        """From an outbox row or its values (``payload`` holds the licence status)."""
        def get(name: str) -> Any:
            return row[name] if isinstance(row, dict) else getattr(row, name)

        day = get("issue_day")
        return cls(get("idem_key"), get("identifier"), int(get("version")),
                   str((get("payload") or {}).get("status", "")), get("issuer_code"),
                   day.isoformat() if hasattr(day, "isoformat") else str(day))

    @property
    def rank(self) -> tuple[int, int]:
        return change_rank(self.identifier, self.revision)


class _Deltas:
    def __init__(self) -> None:
        self.by_day: dict[tuple[str, str], list[int]] = {}

    def add(self, issuer: str, day: str, sign: int, hi: int, lo: int) -> None:
        d = self.by_day.setdefault((issuer, day), [0, 0, 0])
        d[0] += sign
        d[1] += sign * hi
        d[2] += sign * lo

    def write(self, session: Session) -> None:
        rows = [{"issuer_code": i, "day": d, "n": n, "hi": hi, "lo": lo}
                for (i, d), (n, hi, lo) in sorted(self.by_day.items()) if n or hi or lo]
        if rows:
            session.execute(sa.insert(DAYS), rows)


def _held(session: Session, keys: list[str]) -> dict[str, Any]:
    held: dict[str, Any] = {}
    for i in range(0, len(keys), _CHUNK):
        q = sa.select(LATEST).where(LATEST.c.licence_key.in_(keys[i : i + _CHUNK]))
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()  # two transactions changing one licence: the second sees the first
        for row in session.execute(q):
            held[row.licence_key] = row
    return held


def _replace(session: Session, deltas: _Deltas, held: dict[str, Any],
             new: dict[str, Change | None]) -> None:
    """Set each key's latest change to ``new[key]`` (None: no change left), with the day deltas."""
    inserts, updates, deletes = [], [], []
    for key, change in new.items():
        old = held.get(key)
        if old is not None:
            deltas.add(old.issuer_code, old.day, -1, old.hi, old.lo)
        if change is None:
            if old is not None:
                deletes.append(key)
            continue
        hi, lo = halves(change.identifier, change.revision, change.lstatus)
        deltas.add(change.issuer_code, change.day, 1, hi, lo)
        values = {"idem_key": change.idem_key, "issuer_code": change.issuer_code, "day": change.day,
                  "identifier": change.identifier, "revision": change.revision, "lstatus": change.lstatus,
                  "hi": hi, "lo": lo}
        if old is None:
            inserts.append({"licence_key": key, "bucket": tree.bucket_of(key), **values})
        else:
            updates.append({"k": key, **values})
    if inserts:
        session.execute(sa.insert(LATEST), inserts)
    if updates:
        session.execute(
            sa.update(LATEST).where(LATEST.c.licence_key == sa.bindparam("k"))
            .values({c: sa.bindparam(c) for c in updates[0] if c != "k"}), updates)
    for i in range(0, len(deletes), _CHUNK):
        session.execute(sa.delete(LATEST).where(LATEST.c.licence_key.in_(deletes[i : i + _CHUNK])))
    deltas.write(session)


def note_changes(session: Session, changes: Iterable[Change]) -> None:
    """New outbox rows: each becomes its licence's latest change if it ranks above the one held."""
    best: dict[str, Change] = {}
    for c in changes:
        key = licence_key(c.identifier)
        if key not in best or c.rank > best[key].rank:
            best[key] = c
    if not best:
        return
    held = _held(session, sorted(best))
    new: dict[str, Change | None] = {
        key: c for key, c in best.items()
        if key not in held or c.rank > change_rank(held[key].identifier, held[key].revision)}
    _replace(session, _Deltas(), held, new)


def _chain(session: Session, licence_id: int) -> list[int]:
    """The licence row and its earlier versions (amendments link back by ``previous_id``)."""
    ids: list[int] = []
    current: int | None = licence_id
    while current is not None and current not in ids:
        ids.append(current)
        current = session.execute(sa.select(table_of(Licence).c.previous_id)
                                  .where(table_of(Licence).c.id == current)).scalar()
    return ids


def note_skipped(session: Session, rows: Iterable[LicenceOutbox]) -> None:
    """Outbox rows just set skipped (flushed): a licence whose latest change was skipped falls back to
    its latest change still not skipped (an earlier revision or version), or leaves the baseline."""
    rows = list(rows)
    held = _held(session, sorted({licence_key(r.identifier) for r in rows}))
    new: dict[str, Change | None] = {}
    for r in rows:
        key = licence_key(r.identifier)
        if key in new or key not in held or held[key].idem_key != r.idem_key:
            continue
        left = [Change.of_outbox(o) for o in session.execute(
            sa.select(_OUTBOX).where(_OUTBOX.c.licence_id.in_(_chain(session, r.licence_id)),
                                     _OUTBOX.c.status != SKIPPED).order_by(_OUTBOX.c.id))]
        best: Change | None = None
        for c in left:
            if licence_key(c.identifier) == key and (best is None or c.rank > best.rank):
                best = c
        new[key] = best
    if new:
        _replace(session, _Deltas(), held, new)


def compact(session: Session) -> None:
    """Fold the day log into one row per (issuer, day); days whose licences all left are dropped."""
    conn = session.connection()
    top = conn.execute(sa.select(sa.func.max(DAYS.c.id))).scalar()
    if top is None:
        return
    several = conn.execute(sa.select(sa.func.count()).select_from(
        sa.select(DAYS.c.issuer_code, DAYS.c.day).group_by(DAYS.c.issuer_code, DAYS.c.day)
        .having(sa.func.count() > 1).subquery())).scalar_one()
    if not several:
        return
    # The rows summed must be exactly the rows deleted: a writer's row with a lower id can commit
    # between two statements on PostgreSQL, so there it is one statement (one snapshot); SQLite takes
    # the write lock first, so no writer commits while the fold runs.
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(
            "WITH d AS (DELETE FROM licence_recon_day WHERE id <= :top "
            "RETURNING issuer_code, day, n, hi, lo) "
            "INSERT INTO licence_recon_day (issuer_code, day, n, hi, lo) SELECT issuer_code, day, sum(n), "
            "sum(hi), sum(lo) FROM d GROUP BY issuer_code, day "
            "HAVING sum(n) <> 0 OR sum(hi) <> 0 OR sum(lo) <> 0"), {"top": top})
        return
    conn.execute(sa.update(DAYS).where(DAYS.c.id == top).values(n=DAYS.c.n))
    folded = [dict(r._mapping) for r in conn.execute(
        sa.select(DAYS.c.issuer_code, DAYS.c.day, sa.func.sum(DAYS.c.n).label("n"),
                  sa.func.sum(DAYS.c.hi).label("hi"), sa.func.sum(DAYS.c.lo).label("lo"))
        .where(DAYS.c.id <= top).group_by(DAYS.c.issuer_code, DAYS.c.day))]
    conn.execute(sa.delete(DAYS).where(DAYS.c.id <= top))
    rows = [f for f in folded if f["n"] or f["hi"] or f["lo"]]
    for i in range(0, len(rows), 5000):
        conn.execute(sa.insert(DAYS), rows[i : i + 5000])


def day_sums(session: Session, issuer_code: str | None = None) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(issuer, day) -> (count, sum hi, sum lo), days with licences only; folds the log first."""
    compact(session)
    q = (sa.select(DAYS.c.issuer_code, DAYS.c.day, sa.func.sum(DAYS.c.n), sa.func.sum(DAYS.c.hi),
                   sa.func.sum(DAYS.c.lo)).group_by(DAYS.c.issuer_code, DAYS.c.day))
    if issuer_code is not None:
        q = q.where(DAYS.c.issuer_code == issuer_code)
    return {(i, d): (int(n), int(hi), int(lo)) for i, d, n, hi, lo in session.execute(q) if n}


# ---------------------------------------------------------------- full verification


_REBUILT = "recon_rebuilt"


def _rebuild_sql(pg: bool) -> str:
    lk = "substr(identifier, 1, length(identifier) - 6)"  # licence key: without '.vvv.c'
    vseg = "substr(identifier, length(identifier) - 4, 3)"
    status = "payload->>'status'" if pg else "json_extract(payload, '$.status')"
    day = "to_char(issue_day, 'YYYY-MM-DD')" if pg else "CAST(issue_day AS TEXT)"
    if pg:
        md5 = "md5(identifier || '|' || revision || '|' || lstatus)"
        hi = f"('x00000000' || substr({md5}, 1, 8))::bit(64)::bigint"
        lo = f"('x00000000' || substr({md5}, 9, 8))::bit(64)::bigint"
        bucket = "md5(licence_key)"
    else:
        hi, lo, bucket = ("gg_hi(identifier, revision, lstatus)", "gg_lo(identifier, revision, lstatus)",
                          "gg_md5(licence_key)")
    return (
        f"INSERT INTO {_REBUILT} SELECT licence_key, idem_key, issuer_code, day, identifier, revision, "  # noqa: S608
        f"lstatus, {bucket}, {hi}, {lo} FROM ("
        f"SELECT idem_key, issuer_code, {day} AS day, identifier, version AS revision, "
        f"{status} AS lstatus, {lk} AS licence_key, "
        f"row_number() OVER (PARTITION BY {lk} ORDER BY {vseg} DESC, version DESC, id) AS rn "
        f"FROM licence_outbox WHERE status <> '{SKIPPED}') latest WHERE rn = 1")


@dataclass
class Drift:
    licences: int  # licences whose baseline row was wrong or missing or left over
    days: int  # (issuer, day) sums that did not add up to the licences of that day


def rebuild(session: Session) -> Drift:
    """Recompute the baseline from the outbox (one pass over it) and say how far it had drifted."""
    conn = session.connection()
    pg = conn.dialect.name == "postgresql"
    if pg:
        # Writers wait for the rebuild instead of racing it: without the lock, a change committed
        # between the outbox read below and the DELETEs was deleted and not put back. EXCLUSIVE also
        # holds off their SELECT … FOR UPDATE (_held), so no writer holds a row the DELETE needs.
        conn.exec_driver_sql("LOCK TABLE licence_recon_latest, licence_recon_day IN EXCLUSIVE MODE")
    else:
        driver = conn.connection.driver_connection
        tree.install_sqlite_functions(driver)  # type: ignore[arg-type]  # sqlite3.Connection on SQLite
        driver.create_function(  # type: ignore[union-attr]  # likewise
            "gg_hi", 3, lambda i, r, s: halves(i, r, s)[0], deterministic=True)
        driver.create_function(  # type: ignore[union-attr]  # likewise
            "gg_lo", 3, lambda i, r, s: halves(i, r, s)[1], deterministic=True)
    before = day_sums(session)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_REBUILT}")
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {_REBUILT} (licence_key VARCHAR(120), idem_key VARCHAR(140), "
        "issuer_code VARCHAR(18), day VARCHAR(10), identifier VARCHAR(120), revision INTEGER, "
        "lstatus VARCHAR(20), bucket VARCHAR(32), hi BIGINT, lo BIGINT)")
    conn.exec_driver_sql(_rebuild_sql(pg))
    cols = "licence_key, idem_key, issuer_code, day, identifier, revision, lstatus, bucket, hi, lo"
    diff = (f"SELECT licence_key FROM (SELECT {cols} FROM {_REBUILT} EXCEPT SELECT {cols} "  # noqa: S608
            f"FROM licence_recon_latest) a UNION SELECT licence_key FROM (SELECT {cols} FROM "
            f"licence_recon_latest EXCEPT SELECT {cols} FROM {_REBUILT}) b")
    drift = conn.exec_driver_sql(f"SELECT count(*) FROM ({diff}) d").scalar_one()  # noqa: S608
    conn.execute(sa.delete(LATEST))
    conn.execute(sa.delete(DAYS))
    conn.exec_driver_sql(f"INSERT INTO licence_recon_latest ({cols}) SELECT {cols} FROM {_REBUILT}")  # noqa: S608
    conn.exec_driver_sql(
        "INSERT INTO licence_recon_day (issuer_code, day, n, hi, lo) SELECT issuer_code, day, count(*), "  # noqa: S608
        f"sum(hi), sum(lo) FROM {_REBUILT} GROUP BY issuer_code, day")
    conn.exec_driver_sql(f"DROP TABLE {_REBUILT}")
    after = day_sums(session)
    days = sum(1 for k in set(before) | set(after)
               if before.get(k, (0, 0, 0))[0] != after.get(k, (0, 0, 0))[0]
               or tree.digest_of_halves(*before.get(k, (0, 0, 0))[1:])
               != tree.digest_of_halves(*after.get(k, (0, 0, 0))[1:]))
    return Drift(int(drift), days)
