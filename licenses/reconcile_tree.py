"""Reconciliation by digest tree (对账摘要树), the district's side: descend only where the digests differ.

The protocol is in docs/city_registry.md ("Digest tree"); the registry computes the same tree in
city_registry/tree.py, which stands for another government's system and shares no code with us, so
the row hash and the bucket are defined here again and both copies are tested against one vector set.

Our side is one pass over the outbox: the latest non-skipped change of every licence (the registry's
rank) goes into a temporary table with its bucket and row hash, indexed by issuer and day; every
node's children are then one SQL aggregate over that table. The registry is asked for the children of
all the differing nodes of a level in one request (up to CHUNK nodes), so the requests follow the
depth of the tree and the bytes follow the number of differing nodes. A node holding at most ``leaf``
records on either side is listed record by record.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

LEAF = 16
CHUNK = 500  # nodes per request (the registry takes up to 1,000)
DAY_STEPS = (4, 7, 10)
BUCKET_LEN = 32
_MOD = 1 << 64
_ISSUER = re.compile(r"[0-9A-Z]{18}")
TABLE = "recon_expected"


def row_hash(identifier: str, revision: int, status: str) -> int:
    """First 64 bits of MD5(identifier|revision|status), signed (the registry's copy must agree)."""
    v = int(hashlib.md5(f"{identifier}|{revision}|{status}".encode()).hexdigest()[:16], 16)  # noqa: S324
    return v - _MOD if v >= 1 << 63 else v


def bucket_of(licence_key: str) -> str:
    return hashlib.md5(licence_key.encode()).hexdigest()  # noqa: S324  (a bucket, not a secret)


def digest_of(total: Any) -> str:
    return f"{int(total or 0) % _MOD:016x}"


class _Sum64:
    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total += value

    def finalize(self) -> str:
        return str(self.total % _MOD)  # text: SQLite integers stop at 2**63


def _install_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
    dbapi_conn.create_function("gg_md5", 1, lambda s: None if s is None else bucket_of(s), deterministic=True)
    dbapi_conn.create_function(
        "gg_h64", 3, lambda i, r, s: None if i is None else row_hash(i, r, s), deterministic=True)
    dbapi_conn.create_aggregate("gg_sum64", 1, _Sum64)  # type: ignore[arg-type]  # typeshed's protocol


@dataclass(frozen=True)
class Node:
    issuer_code: str | None = None
    day: str = ""
    bucket: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"issuer_code": self.issuer_code, "day": self.day, "bucket": self.bucket}

    def child(self, key: str) -> Node:
        if self.issuer_code is None:
            return Node(key)
        if len(self.day) < 10:
            return Node(self.issuer_code, key)
        return Node(self.issuer_code, self.day, key)

    @property
    def is_bottom(self) -> bool:
        return len(self.bucket) >= BUCKET_LEN


@dataclass(frozen=True)
class Held:
    count: int
    digest: str


def _filter(node: Node) -> tuple[str, dict[str, Any]]:
    where, params = [], {}
    if node.issuer_code is not None:
        where.append("issuer_code = :issuer")
        params["issuer"] = node.issuer_code
    if len(node.day) == 10:
        where.append("day = :day")
        params["day"] = node.day
    elif node.day:
        where.append("day BETWEEN :lo AND :hi")
        params["lo"] = node.day + "-00-00"[: 10 - len(node.day)]
        params["hi"] = node.day + "-99-99"[: 10 - len(node.day)]
    if node.bucket:
        where.append(f"substr(bucket, 1, {len(node.bucket)}) = :bucket")
        params["bucket"] = node.bucket
    return (" AND ".join(where) or "1 = 1"), params


def _child_key(node: Node) -> str:
    if node.issuer_code is None:
        return "issuer_code"
    if len(node.day) < 10:
        return f"substr(day, 1, {DAY_STEPS[[0, 4, 7].index(len(node.day))]})"
    return f"substr(bucket, 1, {len(node.bucket) + 1})"


@dataclass
class Ours:
    outbox_id: int
    outbox_status: str
    licence_key: str
    identifier: str
    revision: int
    status: str
    day: str


class Expected:
    """The district's side of the tree: a temporary table of each licence's latest change."""

    def __init__(self, session: Session, issuer_code: str | None) -> None:
        self.conn = session.connection()
        self.pg = self.conn.dialect.name == "postgresql"
        if not self.pg:
            _install_sqlite_functions(self.conn.connection.driver_connection)  # type: ignore[arg-type]  # typed as any DBAPI connection; on SQLite it is sqlite3.Connection
        if issuer_code is not None and not _ISSUER.fullmatch(issuer_code):
            raise ValueError(f"issuer_code {issuer_code!r} 不是 18 位统一社会信用代码")
        self._build(issuer_code)

    def _build(self, issuer_code: str | None) -> None:
        pg = self.pg
        lk = "substr(identifier, 1, length(identifier) - 6)"  # licence key: without '.vvv.c'
        vseg = "substr(identifier, length(identifier) - 4, 3)"  # version segment, 3 digits
        status = "payload->>'status'" if pg else "json_extract(payload, '$.status')"
        day = "to_char(issue_day, 'YYYY-MM-DD')" if pg else "CAST(issue_day AS TEXT)"
        bucket = "md5(licence_key)" if pg else "gg_md5(licence_key)"
        if pg:
            line = "identifier || '|' || revision || '|' || lstatus"
            h = f"('x' || substr(md5({line}), 1, 16))::bit(64)::bigint"
        else:
            h = "gg_h64(identifier, revision, lstatus)"
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        self.conn.exec_driver_sql(
            f"CREATE TEMP TABLE {TABLE} (outbox_id BIGINT, outbox_status VARCHAR(10), "
            "issuer_code VARCHAR(18), day VARCHAR(10), identifier VARCHAR(140), revision INTEGER, "
            "lstatus VARCHAR(20), licence_key VARCHAR(120), bucket VARCHAR(32), h BIGINT)")
        # The latest change per licence, ranked as the registry ranks (version segment, revision);
        # ties go to the first row, as licenses.reconcile.expected_state keeps them.
        self.conn.execute(sa.text(
            f"INSERT INTO {TABLE} SELECT outbox_id, outbox_status, issuer_code, day, identifier, "  # noqa: S608
            f"revision, lstatus, licence_key, {bucket}, {h} FROM ("
            f"SELECT id AS outbox_id, status AS outbox_status, issuer_code, {day} AS day, identifier, "
            f"version AS revision, {status} AS lstatus, {lk} AS licence_key, "
            f"row_number() OVER (PARTITION BY {lk} ORDER BY {vseg} DESC, version DESC, id) AS rn "
            "FROM licence_outbox WHERE status <> 'skipped'"
            + (" AND issuer_code = :issuer" if issuer_code else "") + ") latest WHERE rn = 1"),
            {"issuer": issuer_code} if issuer_code else {})
        self.conn.exec_driver_sql(f"CREATE INDEX ix_{TABLE}_node ON {TABLE} (issuer_code, day)")
        self.conn.exec_driver_sql(f"CREATE INDEX ix_{TABLE}_key ON {TABLE} (licence_key)")
        self.conn.exec_driver_sql(f"ANALYZE {TABLE}")

    def drop(self) -> None:
        self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")

    def groups(self) -> int:
        """Number of (issuer, day) groups we hold."""
        return int(self.conn.exec_driver_sql(
            f"SELECT count(*) FROM (SELECT DISTINCT issuer_code, day FROM {TABLE}) g").scalar_one())  # noqa: S608

    def children(self, node: Node) -> dict[str, Held]:
        where, params = _filter(node)
        key = _child_key(node)
        total = "sum(h)" if self.pg else "gg_sum64(h)"
        rows = self.conn.execute(sa.text(
            f"SELECT {key}, count(*), {total} FROM {TABLE} WHERE {where} GROUP BY {key}"), params)  # noqa: S608
        return {k: Held(int(n), digest_of(s)) for k, n, s in rows}

    def rows(self, node: Node) -> Iterator[Ours]:
        where, params = _filter(node)
        for r in self.conn.execute(sa.text(
            "SELECT outbox_id, outbox_status, licence_key, identifier, revision, lstatus, day "  # noqa: S608
            f"FROM {TABLE} WHERE {where} ORDER BY licence_key"), params):
            yield Ours(*r)

    def known(self, keys: list[str]) -> set[str]:
        """Which of these licence keys we hold (in any node)."""
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            found.update(self.conn.execute(
                sa.text(f"SELECT licence_key FROM {TABLE} WHERE licence_key IN :keys")  # noqa: S608
                .bindparams(sa.bindparam("keys", expanding=True)), {"keys": keys[i : i + 500]}).scalars())
        return found
