"""The reconciliation digest tree (对账摘要树), the registry's side: count and an additive digest per
node, computed by SQL aggregates, so a client descends only into the nodes that differ.

A node is (issuer, day prefix, bucket prefix). Its children are grouped by, in turn: issuer; year
(``YYYY``); month (``YYYY-MM``); day (``YYYY-MM-DD``, the ``issue_date`` of the record held); then
one more hex character of MD5(licence_key) per level (16 children, down to the 32-character hash).
The bucket hashes the licence key, not the identifier, so an amended licence stays in its bucket; it
is a hash, not the serial itself, because serials are chosen by each issuer (sequential numbers,
year prefixes) and would crowd into a few prefixes.

A row's hash is the first 64 bits of MD5(``identifier|revision|status``) as a signed integer; a
node's digest is the sum of its rows' hashes modulo 2**64 (hex), beside its count. A sum, unlike the
SHA-256 over sorted lines of /api/v1/reconciliation, is an aggregate both PostgreSQL and SQLite can
compute per group without sending the rows anywhere, and a parent's digest is the sum of its
children's. It guards against accidents (lost rows, rolled-back versions), not against a registry
forging digests. The district keeps its own copy (licenses.reconcile_tree); both are tested against
the same vectors.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

SCHEME = "md5-sum64"
MAX_NODES = 1000  # nodes per request
MAX_RECORDS = 50_000  # records per listing request
DAY_STEPS = (4, 7, 10)
BUCKET_LEN = 32
_ISSUER = re.compile(r"[0-9A-Z]{18}")
_DAY = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_BUCKET = re.compile(r"[0-9a-f]{0,32}")
_MOD = 1 << 64


def row_hash(identifier: str, revision: int, status: str) -> int:
    """First 64 bits of MD5(identifier|revision|status) as a signed integer (PostgreSQL's bigint)."""
    v = int(hashlib.md5(f"{identifier}|{revision}|{status}".encode()).hexdigest()[:16], 16)  # noqa: S324
    return v - _MOD if v >= 1 << 63 else v


def bucket_of(licence_key: str) -> str:
    return hashlib.md5(licence_key.encode()).hexdigest()  # noqa: S324  (a bucket, not a secret)


def digest_of(total: Any) -> str:
    """The node digest from the SQL sum of row hashes (PostgreSQL numeric, SQLite integer)."""
    return f"{int(total or 0) % _MOD:016x}"


class _Sum64:
    """SQLite aggregate: sum of signed 64-bit row hashes without overflow (SQLite's SUM raises)."""

    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total += value

    def finalize(self) -> str:
        return str(self.total % _MOD)


def install_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
    """MD5 and the row hash as SQLite functions (SQLite has no hash function of its own)."""
    dbapi_conn.create_function("gg_md5", 1, lambda s: None if s is None else bucket_of(s), deterministic=True)
    dbapi_conn.create_function(
        "gg_h64", 3, lambda i, r, s: None if i is None else row_hash(i, r, s), deterministic=True)
    dbapi_conn.create_aggregate("gg_sum64", 1, _Sum64)  # type: ignore[arg-type]  # typeshed's protocol


@dataclass(frozen=True)
class Node:
    issuer_code: str | None = None
    day: str = ""  # a prefix of YYYY-MM-DD: "", YYYY, YYYY-MM or the day
    bucket: str = ""  # a prefix of MD5(licence_key), only below a day

    @classmethod
    def parse(cls, raw: Any) -> Node:
        """A node from a request; ValueError with the reason for anything malformed."""
        if not isinstance(raw, dict) or set(raw) - {"issuer_code", "day", "bucket"}:
            raise ValueError("节点应为 {issuer_code, day, bucket} 对象")
        issuer, day, bucket = raw.get("issuer_code"), raw.get("day") or "", raw.get("bucket") or ""
        if issuer is not None and not (isinstance(issuer, str) and _ISSUER.fullmatch(issuer)):
            raise ValueError("issuer_code 应为 18 位统一社会信用代码")
        if not isinstance(day, str) or (day and not _DAY.fullmatch(day)):
            raise ValueError("day 应为 YYYY、YYYY-MM 或 YYYY-MM-DD")
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise ValueError("bucket 应为至多 32 位小写十六进制")
        if (day and issuer is None) or (bucket and len(day) != 10):
            raise ValueError("day 需要 issuer_code；bucket 需要完整的 day")
        return cls(issuer, day, bucket)

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


class Dialect:
    """SQL fragments of the tree for one database: PostgreSQL built-ins or the SQLite functions."""

    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"

    def bucket(self, key_sql: str) -> str:
        return f"md5({key_sql})" if self.pg else f"gg_md5({key_sql})"

    def row_hash(self, identifier: str, revision: str, status: str) -> str:
        if self.pg:
            line = f"{identifier} || '|' || {revision} || '|' || {status}"
            return f"('x' || substr(md5({line}), 1, 16))::bit(64)::bigint"
        return f"gg_h64({identifier}, {revision}, {status})"

    def sum64(self, expr: str) -> str:
        return f"sum({expr})" if self.pg else f"gg_sum64({expr})"


def node_filter(node: Node, day_col: str, bucket_sql: str) -> tuple[str, dict[str, Any]]:
    """WHERE clause and parameters selecting a node's rows (a day range keeps the issuer/day index)."""
    where, params = [], {}
    if node.issuer_code is not None:
        where.append("issuer_code = :issuer")
        params["issuer"] = node.issuer_code
    if len(node.day) == 10:
        where.append(f"{day_col} = :day")
        params["day"] = node.day
    elif node.day:  # every day is YYYY-MM-DD: a range on the same shape, whatever the collation
        where.append(f"{day_col} BETWEEN :lo AND :hi")
        params["lo"] = node.day + "-00-00"[: 10 - len(node.day)]
        params["hi"] = node.day + "-99-99"[: 10 - len(node.day)]
    if node.bucket:
        where.append(f"substr({bucket_sql}, 1, {len(node.bucket)}) = :bucket")
        params["bucket"] = node.bucket
    return (" AND ".join(where) or "1 = 1"), params


def child_key_sql(node: Node, day_col: str, bucket_sql: str) -> str:
    if node.issuer_code is None:
        return "issuer_code"
    if len(node.day) < 10:
        return f"substr({day_col}, 1, {DAY_STEPS[[0, 4, 7].index(len(node.day))]})"
    return f"substr({bucket_sql}, 1, {len(node.bucket) + 1})"


def children_sql(node: Node, table: str, dialect: Dialect, *, day_col: str, key_col: str,
                 hash_sql: str) -> tuple[str, dict[str, Any]]:
    """One aggregate over the node's rows: child key, count, sum of row hashes."""
    bucket_sql = dialect.bucket(key_col)
    where, params = node_filter(node, day_col, bucket_sql)
    key = child_key_sql(node, day_col, bucket_sql)
    sql = (f"SELECT {key} AS k, count(*) AS n, {dialect.sum64(hash_sql)} AS s "  # noqa: S608 (no input)
           f"FROM {table} WHERE {where} GROUP BY {key} ORDER BY 1")
    return sql, params


class RegistryTree:
    """The registry's digest tree over ``registry_licence``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = Dialect(engine.dialect.name)
        self._hash = self.dialect.row_hash("identifier", "revision", "status")

    def children(self, nodes: list[Node]) -> list[dict[str, Any]]:
        out = []
        with self.engine.connect() as conn:
            for node in nodes:
                sql, params = children_sql(node, "registry_licence", self.dialect, day_col="issue_day",
                                           key_col="licence_key", hash_sql=self._hash)
                rows = conn.execute(sa.text(sql), params)
                out.append({"node": node.as_dict(), "children": [
                    {"key": k, "count": int(n), "digest": digest_of(s)} for k, n, s in rows]})
        return out

    def records(self, nodes: list[Node]) -> list[dict[str, Any]] | None:
        """The records of each node; None when they add up to more than MAX_RECORDS."""
        bucket_sql = self.dialect.bucket("licence_key")
        filters = [node_filter(node, "issue_day", bucket_sql) for node in nodes]
        with self.engine.connect() as conn:
            total = 0
            for where, params in filters:
                total += conn.execute(sa.text(
                    f"SELECT count(*) FROM registry_licence WHERE {where}"), params).scalar_one()  # noqa: S608
            if total > MAX_RECORDS:
                return None
            out = []
            for node, (where, params) in zip(nodes, filters, strict=True):
                rows = conn.execute(sa.text(
                    "SELECT licence_key, identifier, revision, status, issue_day "  # noqa: S608
                    f"FROM registry_licence WHERE {where} ORDER BY licence_key"), params)
                out.append({"node": node.as_dict(), "records": [
                    {"licence_key": k, "identifier": i, "revision": r, "status": s, "day": d}
                    for k, i, r, s, d in rows]})
        return out
