"""The registry's own database: one row per licence (its latest version), one receipt per
idempotency key and a log of every write that changed a licence row. Its own MetaData, created on
start; the district's Alembic never sees it."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from city_registry import protocol, sums, tree

log = logging.getLogger("city_registry")

metadata = sa.MetaData()

licences = sa.Table(
    "registry_licence",
    metadata,
    sa.Column("licence_key", sa.String(120), primary_key=True),
    sa.Column("identifier", sa.String(140), nullable=False),
    sa.Column("idem_key", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # identifier version segment
    sa.Column("revision", sa.Integer, nullable=False),  # the record's version (status changes)
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("client_id", sa.String(20), nullable=False),
    sa.Column("issuer_code", sa.String(18), nullable=False),
    sa.Column("issue_day", sa.String(10), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Index("ix_registry_licence_issuer_day", "issuer_code", "issue_day"),
)

receipts = sa.Table(
    "registry_receipt",
    metadata,
    sa.Column("idem_key", sa.String(200), primary_key=True),
    sa.Column("licence_key", sa.String(120), nullable=False),
    sa.Column("deliveries", sa.Integer, nullable=False),
    sa.Column("first_result", sa.String(12), nullable=False),
    sa.Column("first_at", sa.String(32), nullable=False),
)

# Every write that changed a licence row (a create or an update), in order. The receipts count
# deliveries per key but not what was applied; this log lets anyone prove that no change of a
# licence was applied twice and that the registry never went back to an older change.
applied_log = sa.Table(
    "registry_applied",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("idem_key", sa.String(200), nullable=False),
    sa.Column("licence_key", sa.String(120), nullable=False),
    sa.Column("identifier", sa.String(140), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("result", sa.String(12), nullable=False),  # created / updated
    sa.Column("applied_at", sa.String(32), nullable=False),
    # No index on idem_key: every applied row paid for one, and the one query by idem_key
    # (applied_twice) aggregates the whole log anyway. A database created before keeps its index.
)

# Every change refused because the registry already held a later one (answered "stale"): with several
# senders (workers, hosts) out-of-order arrivals are expected, and this log shows each was refused.
refused_log = sa.Table(
    "registry_refused",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("idem_key", sa.String(200), nullable=False),
    sa.Column("licence_key", sa.String(120), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("held_version", sa.Integer, nullable=False),
    sa.Column("held_revision", sa.Integer, nullable=False),
    sa.Column("refused_at", sa.String(32), nullable=False),
)

# Per (issuer, day) count and digest sum of registry_licence, kept by triggers (city_registry.sums).
day_sum = sa.Table(sums.TABLE, metadata, *sums.metadata_columns)

# Fault switches and their counters, shared by every process serving this database (gunicorn with
# several workers): one JSON row for the switches, one row per counter.
fault_state = sa.Table(
    "registry_fault",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
fault_counters = sa.Table(
    "registry_fault_counter",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

_CHUNK = 500
_SEP = "\x1e"  # ASCII record separator: between a column's values in the PostgreSQL batch parameters
# Plain str names (a Column name is a str subclass).
_COLS = [str(c.name) for c in licences.c]  # licence_key first
_RCOLS = [str(c.name) for c in receipts.c]
_ACOLS = [str(c.name) for c in applied_log.c][1:]  # without the autoincrement id
_XCOLS = [str(c.name) for c in refused_log.c][1:]


_WCOLS = (*_COLS, "result")  # the PostgreSQL write's columns: a licence row and the applied log's result


def _rank_rule(held: str, new: str) -> str:
    """The ordering rule in SQL: ``new`` replaces ``held`` only with a higher rank (identifier version
    segment, then revision), or with the same change when what is held differs from it (a repair by
    reconciliation)."""
    same_rank = f"{held}.version = {new}.version AND {held}.revision = {new}.revision"
    return (f"{held}.version < {new}.version"
            f" OR ({held}.version = {new}.version AND {held}.revision < {new}.revision)"
            f" OR ({same_rank} AND ({held}.identifier <> {new}.identifier OR {held}.status <> {new}.status))")


def _statements(paramstyle: str) -> dict[str, str]:
    """Plain SQL for the hot path, built once from the table definitions above (no user input).

    ``upsert`` is the ordering rule itself, in SQL (``_rank_rule``), so the rule holds whatever another
    process wrote since this one read, and a lower revision can never roll a licence back, whatever its
    sequence. SQLite runs it per row (executemany, in process); PostgreSQL runs the ``pg_*`` statements,
    one per batch, with the batch passed as one text parameter per column, so a batch of 500 records
    costs three statements instead of about 1,500.
    """
    ph = "?" if paramstyle == "qmark" else "%s"
    update_set = ", ".join(f"{c} = excluded.{c}" for c in _COLS[1:])
    conflict = (f"ON CONFLICT (licence_key) DO UPDATE SET {update_set} "
                f"WHERE {_rank_rule('registry_licence', 'excluded')}")
    statements = {
        "upsert": f"INSERT INTO registry_licence ({', '.join(_COLS)}) "  # noqa: S608
                  f"VALUES ({', '.join([ph] * len(_COLS))}) {conflict}",
        "receipt": f"INSERT INTO registry_receipt ({', '.join(_RCOLS)}) "  # noqa: S608
                   f"VALUES ({', '.join([ph] * len(_RCOLS))}) ON CONFLICT (idem_key) "
                   "DO UPDATE SET deliveries = registry_receipt.deliveries + excluded.deliveries",
        "applied": f"INSERT INTO registry_applied ({', '.join(_ACOLS)}) "  # noqa: S608
                   f"VALUES ({', '.join([ph] * len(_ACOLS))})",
        "refused": f"INSERT INTO registry_refused ({', '.join(_XCOLS)}) "  # noqa: S608
                   f"VALUES ({', '.join([ph] * len(_XCOLS))})",
    }
    if paramstyle == "qmark":
        return statements
    # PostgreSQL. A batch goes as one text parameter per column (_columns_source): the driver sends
    # strings joined in Python, where psycopg's array dumper escaped arrays of 500 values element by
    # element (more than half of the registry's time), and a jsonb document of the batch cost
    # PostgreSQL about as much to parse as the writes themselves. Rows are sorted by licence_key, so
    # processes writing overlapping batches lock rows in one order. Only rows the rule let through come
    # back from the upsert; exactly those go into the applied log, in the same statement.
    cols = ", ".join(_COLS)
    statements["pg_write"] = (
        f"WITH w AS (SELECT * FROM {_columns_source(licences, _WCOLS)}), "  # noqa: S608
        f"up AS (INSERT INTO registry_licence ({cols}) SELECT {cols} FROM w ORDER BY licence_key "
        f"{conflict} RETURNING licence_key), "
        f"logged AS (INSERT INTO registry_applied ({', '.join(_ACOLS)}) "
        "SELECT w.idem_key, w.licence_key, w.identifier, w.version, w.revision, w.sequence, w.result, "
        "w.updated_at FROM w JOIN up USING (licence_key) ORDER BY w.licence_key) "
        "SELECT licence_key FROM up"
    )
    # The refused log and the receipts of a batch in one statement (either list may be empty).
    statements["pg_receipts"] = (
        "WITH refused AS (INSERT INTO registry_refused "  # noqa: S608
        f"({', '.join(_XCOLS)}) SELECT *, %(now)s FROM {_columns_source(refused_log, _XCOLS[:-1], 'r')}) "
        f"INSERT INTO registry_receipt ({', '.join(_RCOLS)}) "
        f"SELECT *, %(now)s FROM {_columns_source(receipts, _RCOLS[:-1], 'd')} ORDER BY 1 "
        "ON CONFLICT (idem_key) DO UPDATE SET deliveries = registry_receipt.deliveries + excluded.deliveries"
    )
    # Licence keys are validated identifiers without their last two segments ([0-9A-Za-z.] only), so
    # one comma-separated string carries them.
    statements["pg_held"] = ("SELECT licence_key, version, revision, identifier, status "
                             "FROM registry_licence WHERE licence_key = ANY(string_to_array(%s, ','))")
    return statements


def _columns_source(table: sa.Table, names: tuple[str, ...] | list[str], alias: str = "w") -> str:
    """A batch's rows as ``unnest`` of one text parameter per column (``%(<alias>_<column>)s``), its
    values joined by the separator ``%(sep)s`` (see ``_column_params``): PostgreSQL splits these for a
    fraction of what parsing the same batch as jsonb cost it (about 5 against 18 µs of its CPU per
    record: the record's JSON text, escaped inside the JSON document, was unescaped character by
    character)."""
    def column(name: str) -> str:
        t = table.c[name].type if name in table.c else sa.Text()
        cast = ("::bigint[]" if isinstance(t, sa.BigInteger)
                else "::int[]" if isinstance(t, sa.Integer) else "")
        return f"string_to_array(%({alias}_{name})s, %(sep)s){cast}"

    return f"unnest({', '.join(column(n) for n in names)}) AS {alias}({', '.join(names)})"


def _column_params(*groups: tuple[str, tuple[str, ...] | list[str], list[tuple[Any, ...]] | list[list[Any]]]
                   ) -> dict[str, str]:
    """The parameters of ``_columns_source`` for (alias, column names, rows) groups: one string per
    column, values joined by the separator. The separator is a control character that JSON never leaves
    raw in a record's text; when a free-text value (an idem_key, a status) holds it, a random one that
    no value holds takes its place, so no value is ever split."""
    columns = {
        f"{alias}_{name}": list(map(str, values))
        for alias, names, rows in groups
        for name, values in zip(names, zip(*rows, strict=True) if rows else [()] * len(names), strict=True)
    }
    sep = _SEP
    while True:
        joined = {key: sep.join(values) for key, values in columns.items()}
        # Joined at C speed; a value holding the separator shows as one separator too many.
        if all(text.count(sep) == max(len(columns[key]) - 1, 0) for key, text in joined.items()):
            return {"sep": sep, **joined}
        sep = _SEP + secrets.token_hex(8)


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            tree.install_sqlite_functions(dbapi_conn)

        return engine
    # No pre-ping: it was a round trip per batch (9 % of the registry's time in the profile). After a
    # database restart the first request on a dead connection answers 500 (retried by the district)
    # and SQLAlchemy replaces the pool's connections.
    return sa.create_engine(url)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RegistryStore:
    """Applies batches. The later change of a licence wins: rank (version segment, revision).

    The rank rule is enforced by the conditional upsert, so it holds whatever other processes or
    threads write. On PostgreSQL the upsert returns the rows it wrote, so a batch knows exactly what
    it applied and this process's threads write concurrently (rows are written in licence_key order,
    so two batches cannot deadlock on each other). On SQLite one lock serialises this process's
    batches (a file has one writer; a read transaction that turns into a write would fail with
    "database is locked" rather than wait).
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several processes (gunicorn workers) start at once: one creates the tables, the others
                # wait for it and find them.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(1603001)")
            created = not sa.inspect(conn).has_table(sums.TABLE)
            metadata.create_all(conn)
            sums.install(conn, created)
        self._sql = _statements(self.engine.dialect.paramstyle)
        self._pg = self.engine.dialect.name == "postgresql"
        self._lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if self._pg else threading.Lock())

    def _held(self, conn: sa.Connection, keys: list[str]) -> dict[str, tuple[tuple[int, int], str, str]]:
        """licence_key -> ((version, revision), identifier, status) of what the database holds."""
        held: dict[str, tuple[tuple[int, int], str, str]] = {}
        if not keys:
            return held
        if self._pg:  # one statement, one parameter, whatever the batch size
            for k, v, rev, ident, st in conn.exec_driver_sql(self._sql["pg_held"], (",".join(keys),)):
                held[k] = ((v, rev), ident, st)
            return held
        for i in range(0, len(keys), _CHUNK):
            q = sa.select(licences.c.licence_key, licences.c.version, licences.c.revision,
                          licences.c.identifier, licences.c.status).where(
                licences.c.licence_key.in_(keys[i : i + _CHUNK])
            )
            for k, v, rev, ident, st in conn.execute(q):
                held[k] = ((v, rev), ident, st)
        return held

    def write(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """Conditional upsert of licence rows (tuples in _COLS order): only higher ranks replace."""
        if rows:
            conn.exec_driver_sql(self._sql["upsert"], rows)

    def _write_logged(self, conn: sa.Connection, writes: dict[str, tuple[Any, ...]],
                      results: dict[str, str], now: str) -> set[str]:
        """Upsert ``writes`` and log the rows actually written; the licence keys written.

        PostgreSQL: one statement (upsert RETURNING, the applied log fed from what it returned). SQLite:
        executemany, then a read-back (one process writes a SQLite file at a time, but another process
        may have written between our read and our write)."""
        if not writes:
            return set()
        rows = list(writes.values())
        if self._pg:
            params = _column_params(("w", _WCOLS, [(*row, results[row[0]]) for row in rows]))
            return {k for (k,) in conn.exec_driver_sql(self._sql["pg_write"], params)}
        self.write(conn, rows)
        stored = self._held(conn, list(writes))
        written = {key for key, row in writes.items()
                   if stored.get(key) == ((row[3], row[4]), row[1], row[9])}
        log_rows = [(row[2], key, row[1], row[3], row[4], row[5], results[key], now)
                    for key, row in writes.items() if key in written]
        if log_rows:
            conn.exec_driver_sql(self._sql["applied"], log_rows)
        return written

    def _log_answers(self, conn: sa.Connection, refused: list[tuple[Any, ...]],
                     deliveries: list[list[Any]], now: str) -> None:
        """The refused log and the receipts (one per idem_key: new, or one more delivery of a known key)."""
        if self._pg:
            params = _column_params(("r", _XCOLS[:-1], refused), ("d", _RCOLS[:-1], deliveries))
            conn.exec_driver_sql(self._sql["pg_receipts"], {**params, "now": now})
            return
        if refused:
            conn.exec_driver_sql(self._sql["refused"], [(*r, now) for r in refused])
        if deliveries:
            conn.exec_driver_sql(self._sql["receipt"], [(*d, now) for d in deliveries])

    def apply_batch(self, client_id: str, envelopes: list[Any]) -> list[dict[str, Any]]:
        """One result per envelope, in order. A statement per batch on PostgreSQL (read what is held;
        upsert + applied log; refused log + receipts), whatever the batch size."""
        results: list[dict[str, Any]] = []
        valid: list[dict[str, Any]] = []
        for envelope in envelopes:
            rec, reason = protocol.validate_record(envelope)
            if rec is None:
                key = envelope.get("idem_key") if isinstance(envelope, dict) else None
                results.append({"idem_key": key, "status": "rejected", "message": reason})
            else:
                results.append({"idem_key": rec["idem_key"]})
                valid.append(rec)
        if not valid:
            return results
        now = _now()
        with self._lock, self.engine.begin() as conn:
            keys = list({r["licence_key"] for r in valid})
            held = self._held(conn, keys)
            existing = set(held)
            held_before = frozenset(existing)
            # Rows are built as tuples in column order (_COLS) for the driver: building dicts and
            # converting them was a tenth of the registry's time per record.
            writes: dict[str, tuple[Any, ...]] = {}
            applied: dict[str, list[tuple[dict[str, Any], tuple[int, int]]]] = {}
            dumps = orjson.dumps
            outcome = iter(r for r in results if "status" not in r)
            slots: list[tuple[dict[str, Any], dict[str, Any]]] = []
            held_rank: dict[int, tuple[int, int]] = {}  # a stale slot -> the rank held instead
            for rec in valid:
                slot = next(outcome)
                slots.append((slot, rec))
                key = rec["licence_key"]
                rank = (rec["version"], rec["revision"])
                current = held.get(key)
                # Same change re-sent: a duplicate, unless what we hold differs (repaired by reconciliation).
                repair = current is not None and rank == current[0] and (
                    current[1] != rec["identifier"] or current[2] != rec["status"])
                if current is None or rank > current[0] or repair:
                    writes[key] = (
                        key, rec["identifier"], rec["idem_key"], rec["version"], rec["revision"],
                        rec["sequence"], client_id, rec["issuer_code"], rec["issue_day"], rec["status"],
                        dumps(rec["record"]).decode(), now,
                    )
                    status = "updated" if key in existing else "created"
                    existing.add(key)
                    held[key] = (rank, rec["identifier"], rec["status"])
                    applied.setdefault(key, []).append((slot, rank))
                elif rank == current[0]:
                    status = "duplicate"
                else:
                    status = "stale"
                    held_rank[id(slot)] = current[0]
                slot["status"] = status
                slot["version"] = held[key][0][0]
            written = self._write_logged(
                conn, writes, {k: "updated" if k in held_before else "created" for k in writes}, now)
            # A row the rule refused: another process stored this change or a later one since we read.
            # What we took as applied is answered by what the database now holds (a rare second read).
            lost = [key for key in writes if key not in written]
            for key, stored in self._held(conn, lost).items():
                for slot, rank in applied[key]:
                    slot["status"] = "stale" if rank < stored[0] else "duplicate"
                    if slot["status"] == "stale":
                        held_rank[id(slot)] = stored[0]
                    slot["version"] = stored[0][0]
            refused = [
                (rec["idem_key"], rec["licence_key"], rec["version"], rec["revision"], *held_rank[id(slot)])
                for slot, rec in slots if slot["status"] == "stale"
            ]
            deliveries: dict[str, list[Any]] = {}
            for slot, rec in slots:
                receipt = deliveries.get(rec["idem_key"])
                if receipt is not None:
                    receipt[2] += 1
                else:
                    deliveries[rec["idem_key"]] = [rec["idem_key"], rec["licence_key"], 1, slot["status"]]
            self._log_answers(conn, refused, list(deliveries.values()), now)
        self._trace(valid, results)
        return results

    @staticmethod
    def _trace(valid: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        """Log each applied record that carries the district's request id (one grep follows a licence)."""
        if not any(r["request_id"] for r in valid):
            return
        by_key = {r["idem_key"]: r["request_id"] for r in valid if r["request_id"]}
        for res in results:
            rid = by_key.get(res["idem_key"])
            if rid and "status" in res:
                log.info("record %s %s request_id=%s", res["idem_key"], res["status"], rid)

    def digests(self, issuer_code: str | None, since: str | None, until: str | None) -> list[dict[str, Any]]:
        """Count and digest per issuer and issue day (optionally one issuer, a day range)."""
        q = sa.select(
            licences.c.issuer_code, licences.c.issue_day, licences.c.identifier, licences.c.revision,
            licences.c.status,
        )
        if issuer_code:
            q = q.where(licences.c.issuer_code == issuer_code)
        if since:
            q = q.where(licences.c.issue_day >= since)
        if until:
            q = q.where(licences.c.issue_day <= until)
        groups: dict[tuple[str, str], list[tuple[str, int, str]]] = {}
        with self.engine.connect() as conn:
            for issuer, day, identifier, revision, status in conn.execute(q):
                groups.setdefault((issuer, day), []).append((identifier, revision, status))
        out = []
        for (issuer, day), rows in sorted(groups.items()):
            count, hexdigest = protocol.digest(rows)
            out.append({"issuer_code": issuer, "day": day, "count": count, "digest": hexdigest})
        return out

    def records(self, issuer_code: str, day: str) -> list[dict[str, Any]]:
        q = (
            sa.select(licences.c.licence_key, licences.c.identifier, licences.c.version,
                      licences.c.revision, licences.c.sequence, licences.c.status)
            .where(licences.c.issuer_code == issuer_code, licences.c.issue_day == day)
            .order_by(licences.c.licence_key)
        )
        with self.engine.connect() as conn:
            return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(q)]

    @property
    def writer_lock(self) -> contextlib.AbstractContextManager[Any]:
        """This process's writer lock (SQLite; a no-op on PostgreSQL), for other writers of the file."""
        return self._lock

    def verify_sums(self) -> list[dict[str, Any]]:
        """The periodic full check of the day sums against the records (city_registry.sums.verify)."""
        with self._lock, self.engine.begin() as conn:
            return sums.verify(conn)

    def applied_twice(self) -> list[dict[str, Any]]:
        """Changes (idem_keys) written more than once, with how often: empty when no change of a
        licence was applied twice."""
        q = (
            sa.select(applied_log.c.idem_key, sa.func.count().label("times"))
            .group_by(applied_log.c.idem_key)
            .having(sa.func.count() > 1)
            .order_by(applied_log.c.idem_key)
        )
        with self.engine.connect() as conn:
            return [{"idem_key": k, "times": int(n)} for k, n in conn.execute(q)]

    def refused(self) -> list[dict[str, Any]]:
        """Every change refused as stale, in the order refused."""
        q = sa.select(refused_log).order_by(refused_log.c.id)
        with self.engine.connect() as conn:
            return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(q)]

    def regressions(self) -> list[dict[str, Any]]:
        """Applied writes that went back to a lower (version, revision) than an earlier applied write of
        the same licence: empty when the registry never regressed a licence."""
        q = sa.select(applied_log.c.id, applied_log.c.licence_key, applied_log.c.version,
                      applied_log.c.revision).order_by(applied_log.c.licence_key, applied_log.c.id)
        out: list[dict[str, Any]] = []
        last: dict[str, tuple[int, int]] = {}
        with self.engine.connect() as conn:
            for row_id, key, version, revision in conn.execute(q):
                rank = (version, revision)
                if key in last and rank < last[key]:
                    out.append({"id": row_id, "licence_key": key, "rank": list(rank),
                                "after": list(last[key])})
                last[key] = max(rank, last.get(key, rank))
        return out

    def stats(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            n_lic = conn.execute(sa.select(sa.func.count()).select_from(licences)).scalar_one()
            n_rec, total = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(receipts.c.deliveries), 0))
            ).one()
            n_applied = conn.execute(sa.select(sa.func.count()).select_from(applied_log)).scalar_one()
            n_refused = conn.execute(sa.select(sa.func.count()).select_from(refused_log)).scalar_one()
        return {"licences": n_lic, "receipts": n_rec, "deliveries": int(total),
                "redeliveries": int(total) - n_rec, "applied": int(n_applied),
                "refused_stale": int(n_refused)}

    def reset(self) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(applied_log.delete())
            conn.execute(refused_log.delete())
            conn.execute(receipts.delete())
            conn.execute(licences.delete())
            conn.execute(day_sum.delete())
