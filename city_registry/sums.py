# ruff: noqa: S608  (every statement here is built from constants, no input)
"""Per (issuer, day) count and digest sum of ``registry_licence``, kept by the database itself.

Triggers on ``registry_licence`` add to ``registry_day_sum`` in the transaction of every write,
whoever makes it (the batch upsert, a reset, an operator's SQL), so the sums cannot silently miss a
change the way application bookkeeping can:

- PostgreSQL: statement-level triggers with transition tables. One INSERT per statement and day,
  with the count and the sums of the new rows' hash halves minus the old rows' (an upsert of 500
  records adds a row or two). TRUNCATE empties the sums.
- SQLite (no hash function in SQL; a trigger cannot call one another connection lacks): row
  triggers log the row itself (``identifier, revision, status`` with ``n`` = +1 or -1); the fold
  hashes them with this process's functions.

The table is append-only between folds, so concurrent writers never wait on a day's row. ``fold``
(run before each tree request) replaces the rows up to the highest id seen by one row per day. A row
hash is split into unsigned 32-bit halves, so plain SUM adds 30M of them without overflow on both
databases; a node's digest is ``(sum(hi) << 32) + sum(lo)`` modulo 2**64.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

TABLE = "registry_day_sum"

metadata_columns = (
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("issuer_code", sa.String(18), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("hi", sa.BigInteger, nullable=False),
    sa.Column("lo", sa.BigInteger, nullable=False),
    # SQLite only: a row logged by a trigger, hashed at the fold.
    sa.Column("identifier", sa.String(140)),
    sa.Column("revision", sa.Integer),
    sa.Column("status", sa.String(20)),
)


def _md5_line(prefix: str = "") -> str:
    return f"md5({prefix}identifier || '|' || {prefix}revision || '|' || {prefix}status)"


def halves_sql(pg: bool, prefix: str = "") -> tuple[str, str]:
    """SQL of a row's hash halves (high, low 32 bits, unsigned) from its identifier, revision, status."""
    if pg:
        m = _md5_line(prefix)
        return (f"('x00000000' || substr({m}, 1, 8))::bit(64)::bigint",
                f"('x00000000' || substr({m}, 9, 8))::bit(64)::bigint")
    args = f"{prefix}identifier, {prefix}revision, {prefix}status"
    return f"gg_hi({args})", f"gg_lo({args})"


def _pg_ddl() -> list[str]:
    hi, lo = halves_sql(True)
    cols = "issuer_code, issue_day, 1 AS s, " + f"{hi} AS hi, {lo} AS lo"
    minus = "issuer_code, issue_day, -1 AS s, " + f"{hi} AS hi, {lo} AS lo"
    insert = (f"INSERT INTO {TABLE} (issuer_code, day, n, hi, lo) SELECT issuer_code, issue_day, "
              "sum(s), sum(s * hi), sum(s * lo) FROM ({rows}) r GROUP BY issuer_code, issue_day "
              "HAVING sum(s) <> 0 OR sum(s * hi) <> 0 OR sum(s * lo) <> 0 ORDER BY 1, 2;")
    body = (
        "BEGIN\n"
        "  IF TG_OP = 'INSERT' THEN\n"
        f"    {insert.format(rows=f'SELECT {cols} FROM new_rows')}\n"
        "  ELSIF TG_OP = 'DELETE' THEN\n"
        f"    {insert.format(rows=f'SELECT {minus} FROM old_rows')}\n"
        "  ELSE\n"
        f"    {insert.format(rows=f'SELECT {cols} FROM new_rows UNION ALL SELECT {minus} FROM old_rows')}\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END")
    return [
        "CREATE OR REPLACE FUNCTION registry_day_sum_log() RETURNS trigger LANGUAGE plpgsql AS "
        f"$f$\n{body}\n$f$",
        "CREATE OR REPLACE FUNCTION registry_day_sum_truncate() RETURNS trigger LANGUAGE plpgsql AS "
        f"$f$ BEGIN DELETE FROM {TABLE}; RETURN NULL; END $f$",
        "CREATE OR REPLACE TRIGGER registry_licence_sum_ins AFTER INSERT ON registry_licence "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION registry_day_sum_log()",
        "CREATE OR REPLACE TRIGGER registry_licence_sum_upd AFTER UPDATE ON registry_licence "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION registry_day_sum_log()",
        "CREATE OR REPLACE TRIGGER registry_licence_sum_del AFTER DELETE ON registry_licence "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION registry_day_sum_log()",
        "CREATE OR REPLACE TRIGGER registry_licence_sum_trunc AFTER TRUNCATE ON registry_licence "
        "FOR EACH STATEMENT EXECUTE FUNCTION registry_day_sum_truncate()",
    ]


def _sqlite_ddl() -> list[str]:
    def log(row: str, sign: int) -> str:
        return (f"INSERT INTO {TABLE} (issuer_code, day, n, hi, lo, identifier, revision, status) VALUES "
                f"({row}.issuer_code, {row}.issue_day, {sign}, 0, 0, {row}.identifier, {row}.revision, "
                f"{row}.status);")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}"
                          for c in ("issuer_code", "issue_day", "identifier", "revision", "status"))
    return [
        f"CREATE TRIGGER IF NOT EXISTS registry_licence_sum_ins AFTER INSERT ON registry_licence "
        f"BEGIN {log('NEW', 1)} END",
        f"CREATE TRIGGER IF NOT EXISTS registry_licence_sum_del AFTER DELETE ON registry_licence "
        f"BEGIN {log('OLD', -1)} END",
        f"CREATE TRIGGER IF NOT EXISTS registry_licence_sum_upd AFTER UPDATE ON registry_licence "
        f"WHEN {changed} BEGIN {log('OLD', -1)} {log('NEW', 1)} END",
    ]


def _aggregate_sql(pg: bool, where: str = "") -> str:
    """Sums per (issuer, day) of the table's rows (logged SQLite rows hashed here)."""
    hi, lo = halves_sql(pg)
    return (f"SELECT issuer_code, day, sum(n), "
            f"sum(CASE WHEN identifier IS NULL THEN hi ELSE n * {hi} END), "
            f"sum(CASE WHEN identifier IS NULL THEN lo ELSE n * {lo} END) "
            f"FROM {TABLE} {where} GROUP BY issuer_code, day")


def install(conn: sa.Connection, created: bool) -> None:
    """The triggers, and the sums of the rows already held when the table is new (an older registry)."""
    pg = conn.dialect.name == "postgresql"
    if created:
        conn.exec_driver_sql(f"DELETE FROM {TABLE}")
        hi, lo = halves_sql(pg)
        conn.exec_driver_sql(
            f"INSERT INTO {TABLE} (issuer_code, day, n, hi, lo) SELECT issuer_code, issue_day, count(*), "
            f"sum({hi}), sum({lo}) FROM registry_licence GROUP BY issuer_code, issue_day")
    for ddl in _pg_ddl() if pg else _sqlite_ddl():
        conn.exec_driver_sql(ddl)


def fold(conn: sa.Connection) -> None:
    """Replace the rows up to the highest id by one row per day (rows still being written stay).

    The rows summed must be exactly the rows deleted: on PostgreSQL one statement (a DELETE ...
    RETURNING feeding the INSERT, one snapshot), since a writer's row with a lower id can commit
    between two statements; on SQLite the fold takes the write lock first, so no writer commits
    while it runs."""
    pg = conn.dialect.name == "postgresql"
    top, rows, days = conn.exec_driver_sql(
        f"SELECT max(id), count(*), (SELECT count(*) FROM (SELECT DISTINCT issuer_code, day FROM {TABLE}) d) "
        f"FROM {TABLE}").one()
    if top is None or rows == days:
        return
    if pg:
        hi, lo = halves_sql(pg)
        conn.exec_driver_sql(
            f"WITH d AS (DELETE FROM {TABLE} WHERE id <= {int(top)} "
            "RETURNING issuer_code, day, n, hi, lo, identifier, revision, status) "
            f"INSERT INTO {TABLE} (issuer_code, day, n, hi, lo) SELECT issuer_code, day, sum(n), "
            f"sum(CASE WHEN identifier IS NULL THEN hi ELSE n * {hi} END) AS h, "
            f"sum(CASE WHEN identifier IS NULL THEN lo ELSE n * {lo} END) AS l FROM d "
            "GROUP BY issuer_code, day HAVING sum(n) <> 0 "
            f"OR sum(CASE WHEN identifier IS NULL THEN hi ELSE n * {hi} END) <> 0 "
            f"OR sum(CASE WHEN identifier IS NULL THEN lo ELSE n * {lo} END) <> 0")
        return
    conn.exec_driver_sql(f"UPDATE {TABLE} SET n = n WHERE id = {int(top)}")  # the write lock, first
    folded = [{"issuer_code": i, "day": d, "n": int(n), "hi": int(hi), "lo": int(lo)}
              for i, d, n, hi, lo in conn.exec_driver_sql(_aggregate_sql(pg, f"WHERE id <= {int(top)}"))
              if n or hi or lo]
    conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE id <= {int(top)}")
    for i in range(0, len(folded), 5000):
        conn.execute(sa.text(f"INSERT INTO {TABLE} (issuer_code, day, n, hi, lo) "
                             "VALUES (:issuer_code, :day, :n, :hi, :lo)"), folded[i : i + 5000])


def day_sums(conn: sa.Connection, issuers: list[str] | None) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(issuer, day) -> (count, sum hi, sum lo) for these issuers (None: all), days with records."""
    pg = conn.dialect.name == "postgresql"
    where, params = "", {}
    if issuers is not None:
        where = "WHERE issuer_code IN (" + ", ".join(f":i{k}" for k in range(len(issuers))) + ")"
        params = {f"i{k}": v for k, v in enumerate(issuers)}
    return {(i, d): (int(n), int(hi), int(lo))
            for i, d, n, hi, lo in conn.execute(sa.text(_aggregate_sql(pg, where)), params) if n}


def verify(conn: sa.Connection) -> list[dict[str, Any]]:
    """Recompute the sums from the records (one pass over them); the days that differed, repaired.

    The periodic full check: with the triggers in place nothing differs, unless they were dropped or
    disabled, or the sums table was edited."""
    pg = conn.dialect.name == "postgresql"
    fold(conn)
    kept = day_sums(conn, None)
    hi, lo = halves_sql(pg)
    actual = {(i, d): (int(n), int(h), int(low)) for i, d, n, h, low in conn.exec_driver_sql(
        f"SELECT issuer_code, issue_day, count(*), sum({hi}), sum({lo}) FROM registry_licence "
        "GROUP BY issuer_code, issue_day")}
    wrong = sorted(k for k in set(kept) | set(actual)
                   if kept.get(k, (0, 0, 0)) != actual.get(k, (0, 0, 0)))
    if wrong:
        install(conn, created=True)
    return [{"issuer_code": i, "day": d, "kept": list(kept.get((i, d), (0, 0, 0))[:1]),
             "actual": list(actual.get((i, d), (0, 0, 0))[:1])} for i, d in wrong]
