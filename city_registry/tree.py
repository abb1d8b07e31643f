"""The reconciliation digest tree (对账摘要树), the registry's side: count and an additive digest per
node, so a client descends only into the nodes that differ. The levels above the day are added up
from the per-day sums the database keeps (city_registry.sums); below the day, SQL aggregates over the
records of the requested days.

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

import contextlib
import hashlib
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from city_registry import sums

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


def halves(identifier: str, revision: int, status: str) -> tuple[int, int]:
    """The row hash as unsigned 32-bit halves (high, low), the form the day sums add up."""
    u = row_hash(identifier, revision, status) % _MOD
    return u >> 32, u & 0xFFFFFFFF


def digest_of_halves(hi: Any, lo: Any) -> str:
    return f"{((int(hi or 0) << 32) + int(lo or 0)) % _MOD:016x}"


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
    dbapi_conn.create_function("gg_hi", 3, lambda i, r, s: None if i is None else halves(i, r, s)[0],
                               deterministic=True)
    dbapi_conn.create_function("gg_lo", 3, lambda i, r, s: None if i is None else halves(i, r, s)[1],
                               deterministic=True)
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


DAYS_PER_QUERY = 64  # days per query: few enough that PostgreSQL probes the (issuer, day) index


def _days_join(days: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
    """A join that keeps the rows of these (issuer, day)s: ``JOIN (VALUES …) n ON …``. Not an OR of
    conditions: PostgreSQL evaluated an OR of 500 days on every row of a sequential scan (minutes at
    1M rows); the join probes the (issuer, day) index once per day, on both databases."""
    values = ", ".join(f"(:i{k}, :d{k})" for k in range(len(days)))
    params: dict[str, Any] = {}
    for k, (issuer, day) in enumerate(days):
        params[f"i{k}"], params[f"d{k}"] = issuer, day
    return (f"JOIN (VALUES {values}) n ON registry_licence.issuer_code = n.column1 "
            "AND registry_licence.issue_day = n.column2"), params


class RegistryTree:
    """The registry's digest tree over ``registry_licence``.

    Levels above the day (root, issuer, year, month) are added up from the day sums the database
    keeps (city_registry.sums), read once per request; the day and bucket levels aggregate the
    records of the requested days only, one grouped query per level in the request.
    """

    def __init__(self, engine: sa.Engine, lock: contextlib.AbstractContextManager[Any] | None = None) -> None:
        """``lock``: the store's writer lock on SQLite (one writer per file), held while folding."""
        self.engine = engine
        self.dialect = Dialect(engine.dialect.name)
        self._hash = self.dialect.row_hash("identifier", "revision", "status")
        self._lock = lock or contextlib.nullcontext()

    def _fold(self) -> None:
        with self._lock, self.engine.begin() as conn:
            if self.dialect.pg:  # one fold at a time; the others find it done
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(1603002)")
            sums.fold(conn)

    @staticmethod
    def _upper(node: Node, days: dict[tuple[str, str], tuple[int, int, int]]) -> list[dict[str, Any]]:
        step = 0 if node.issuer_code is None else DAY_STEPS[[0, 4, 7].index(len(node.day))]
        acc: dict[str, list[int]] = {}
        for (issuer, day), (n, hi, lo) in days.items():
            if node.issuer_code is not None and (issuer != node.issuer_code or not day.startswith(node.day)):
                continue
            a = acc.setdefault(issuer if step == 0 else day[:step], [0, 0, 0])
            a[0] += n
            a[1] += hi
            a[2] += lo
        return [{"key": k, "count": n, "digest": digest_of_halves(hi, lo)}
                for k, (n, hi, lo) in sorted(acc.items())]

    def children(self, nodes: list[Node]) -> list[dict[str, Any]]:
        upper = [n for n in nodes if len(n.day) < 10]
        out: dict[int, list[dict[str, Any]]] = {}
        days: dict[tuple[str, str], tuple[int, int, int]] = {}
        if upper:
            self._fold()
        with self.engine.connect() as conn:
            if upper:
                issuers = None if any(n.issuer_code is None for n in upper) else sorted(
                    {str(n.issuer_code) for n in upper})
                days = sums.day_sums(conn, issuers)
            by_len: dict[int, list[int]] = {}
            for i, node in enumerate(nodes):
                if len(node.day) < 10:
                    out[i] = self._upper(node, days)
                else:
                    by_len.setdefault(len(node.bucket), []).append(i)
            bucket_sql = self.dialect.bucket("licence_key")
            for length, idx in by_len.items():
                key = f"substr({bucket_sql}, 1, {length + 1})"
                found: dict[tuple[str, str], list[tuple[str, int, Any]]] = {}
                wanted = sorted({(str(nodes[i].issuer_code), nodes[i].day) for i in idx})
                for j in range(0, len(wanted), DAYS_PER_QUERY):
                    join, params = _days_join(wanted[j : j + DAYS_PER_QUERY])
                    sql = (f"SELECT issuer_code, issue_day, {key}, count(*), "  # noqa: S608
                           f"{self.dialect.sum64(self._hash)} FROM registry_licence {join} "
                           f"GROUP BY issuer_code, issue_day, {key} ORDER BY 3")
                    for issuer, day, k, n, s in conn.execute(sa.text(sql), params):
                        found.setdefault((issuer, day), []).append((k, int(n), s))
                for i in idx:
                    node = nodes[i]
                    out[i] = [{"key": k, "count": n, "digest": digest_of(s)}
                              for k, n, s in found.get((str(node.issuer_code), node.day), [])
                              if k.startswith(node.bucket)]
        return [{"node": node.as_dict(), "children": out[i]} for i, node in enumerate(nodes)]

    def records(self, nodes: list[Node]) -> list[dict[str, Any]] | None:
        """The records of each node; None when they add up to more than MAX_RECORDS."""
        bucket_sql = self.dialect.bucket("licence_key")
        cols = f"licence_key, identifier, revision, status, issue_day, issuer_code, {bucket_sql}"
        listed: list[list[dict[str, Any]]] = [[] for _ in nodes]
        total = 0
        with self.engine.connect() as conn:
            upper = [i for i, n in enumerate(nodes) if len(n.day) < 10]
            low = [i for i, n in enumerate(nodes) if len(n.day) == 10]
            for i in upper:  # a small issuer or month (at most a leaf's worth of records, as a rule)
                where, params = node_filter(nodes[i], "issue_day", bucket_sql)
                total += conn.execute(sa.text(
                    f"SELECT count(*) FROM registry_licence WHERE {where}"), params).scalar_one()  # noqa: S608
                if total > MAX_RECORDS:
                    return None
                listed[i] = [_record(r) for r in conn.execute(sa.text(
                    f"SELECT {cols} FROM registry_licence WHERE {where} ORDER BY licence_key"), params)]  # noqa: S608
            if low:
                by_day: dict[tuple[str, str], list[Any]] = {}
                days = sorted({(str(nodes[i].issuer_code), nodes[i].day) for i in low})
                for j in range(0, len(days), DAYS_PER_QUERY):
                    join, params = _days_join(days[j : j + DAYS_PER_QUERY])
                    for r in conn.execute(sa.text(
                            f"SELECT {cols} FROM registry_licence {join} ORDER BY licence_key"), params):  # noqa: S608
                        by_day.setdefault((r[5], r[4]), []).append(r)
                for i in low:
                    node = nodes[i]
                    listed[i] = [_record(r) for r in by_day.get((str(node.issuer_code), node.day), [])
                                 if r[6].startswith(node.bucket)]
                    total += len(listed[i])
                    if total > MAX_RECORDS:
                        return None
        return [{"node": node.as_dict(), "records": rows} for node, rows in zip(nodes, listed, strict=True)]


def _record(r: Any) -> dict[str, Any]:
    return {"licence_key": r[0], "identifier": r[1], "revision": r[2], "status": r[3], "day": r[4]}
