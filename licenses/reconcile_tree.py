"""Reconciliation by digest tree (对账摘要树), the district's side: descend only where the digests differ.

The protocol is in docs/city_registry.md ("Digest tree"); the registry computes the same tree in
city_registry/tree.py, which stands for another government's system and shares no code with us, so
the row hash and the bucket are defined here again and both copies are tested against one vector set.

Our side reads the baseline kept on write (licenses.recon_state): the levels above the day (root,
issuer, year, month) come from the per-(issuer, day) sums, read once per run (one row per day); the
day and bucket levels aggregate the latest change of each licence of the differing days only, one
grouped query per level. The registry is asked for the children of all the differing nodes of a level
in one request (up to CHUNK nodes), so the requests follow the depth of the tree and the bytes follow
the number of differing nodes. A node holding at most ``leaf`` records on either side is listed record
by record.
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


def row_hash(identifier: str, revision: int, status: str) -> int:
    """First 64 bits of MD5(identifier|revision|status), signed (the registry's copy must agree)."""
    v = int(hashlib.md5(f"{identifier}|{revision}|{status}".encode()).hexdigest()[:16], 16)  # noqa: S324
    return v - _MOD if v >= 1 << 63 else v


def bucket_of(licence_key: str) -> str:
    return hashlib.md5(licence_key.encode()).hexdigest()  # noqa: S324  (a bucket, not a secret)


def check_issuer(issuer_code: str | None) -> None:
    if issuer_code is not None and not _ISSUER.fullmatch(issuer_code):
        raise ValueError(f"issuer_code {issuer_code!r} 不是 18 位统一社会信用代码")


def digest_of_halves(hi: Any, lo: Any) -> str:
    """A node's digest from the sums of its rows' hash halves (high and low 32 bits, unsigned)."""
    return f"{((int(hi or 0) << 32) + int(lo or 0)) % _MOD:016x}"


def install_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
    """MD5 of a licence key (the bucket) as an SQLite function, for the baseline's rebuild."""
    dbapi_conn.create_function("gg_md5", 1, lambda s: None if s is None else bucket_of(s), deterministic=True)


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
        where.append("l.issuer_code = :issuer")
        params["issuer"] = node.issuer_code
    if len(node.day) == 10:
        where.append("l.day = :day")
        params["day"] = node.day
    elif node.day:
        where.append("l.day BETWEEN :lo AND :hi")
        params["lo"] = node.day + "-00-00"[: 10 - len(node.day)]
        params["hi"] = node.day + "-99-99"[: 10 - len(node.day)]
    if node.bucket:  # a range on the (issuer, day, bucket) index: buckets are lowercase hex
        where.append("l.bucket >= :blo AND l.bucket <= :bhi")
        params["blo"] = node.bucket
        params["bhi"] = node.bucket + "g"
    return (" AND ".join(where) or "1 = 1"), params


def _nodes_join(nodes: list[Node]) -> tuple[str, dict[str, Any]]:
    """A join keeping the rows of these nodes (each a day or below) tagged by position
    (``n.column5``): ``JOIN (VALUES (issuer, day, bucket from, bucket to, k), …)``, a range on the
    (issuer, day, bucket) index per node. Not an OR of conditions: PostgreSQL evaluated an OR of 500
    days on every row of a sequential scan."""
    values, params = [], {}
    for k, node in enumerate(nodes):
        values.append(f"(:i{k}, :d{k}, :b{k}, :e{k}, {k})")
        params[f"i{k}"], params[f"d{k}"] = node.issuer_code, node.day
        params[f"b{k}"], params[f"e{k}"] = node.bucket, node.bucket + "g"  # buckets are lowercase hex
    return (f"JOIN (VALUES {', '.join(values)}) n ON l.issuer_code = n.column1 AND l.day = n.column2 "
            "AND l.bucket >= n.column3 AND l.bucket < n.column4"), params


@dataclass
class Ours:
    idem_key: str  # its outbox row (looked up only for the licences that differ: outbox_of)
    licence_key: str
    identifier: str
    revision: int
    status: str
    day: str


_COLS = "l.idem_key, l.licence_key, l.identifier, l.revision, l.lstatus, l.day"
NODES_PER_QUERY = 64  # nodes of a level per query: few enough that PostgreSQL probes the index


class Expected:
    """The district's side of the tree, read from the baseline kept on write (licenses.recon_state)."""

    def __init__(self, session: Session, days: dict[tuple[str, str], tuple[int, int, int]]) -> None:
        """``days``: (issuer, day) -> (count, sum of hash high halves, sum of low halves), as
        licenses.recon_state.day_sums gives them."""
        self.conn = session.connection()
        self.days = days

    def groups(self) -> int:
        """Number of (issuer, day) groups we hold."""
        return len(self.days)

    def _upper(self, node: Node) -> dict[str, Held]:
        step = 0 if node.issuer_code is None else DAY_STEPS[[0, 4, 7].index(len(node.day))]
        sums: dict[str, list[int]] = {}
        for (issuer, day), (n, hi, lo) in self.days.items():
            if node.issuer_code is not None and (issuer != node.issuer_code or not day.startswith(node.day)):
                continue
            s = sums.setdefault(issuer if step == 0 else day[:step], [0, 0, 0])
            s[0] += n
            s[1] += hi
            s[2] += lo
        return {k: Held(n, digest_of_halves(hi, lo)) for k, (n, hi, lo) in sums.items()}

    def children_many(self, nodes: list[Node]) -> list[dict[str, Held]]:
        """Each node's children; every day or bucket level of the list in one grouped query."""
        out: dict[int, dict[str, Held]] = {}
        by_len: dict[int, list[int]] = {}
        for i, node in enumerate(nodes):
            if len(node.day) < 10:
                out[i] = self._upper(node)
            else:
                by_len.setdefault(len(node.bucket), []).append(i)
        for length, idx in by_len.items():
            key = f"substr(l.bucket, 1, {length + 1})"
            for j in range(0, len(idx), NODES_PER_QUERY):
                part = idx[j : j + NODES_PER_QUERY]
                join, params = _nodes_join([nodes[i] for i in part])
                sql = (f"SELECT n.column5, {key}, count(*), sum(l.hi), sum(l.lo) "  # noqa: S608
                       f"FROM licence_recon_latest l {join} GROUP BY n.column5, {key}")
                for i in part:
                    out[i] = {}
                for pos, k, n, hi, lo in self.conn.execute(sa.text(sql), params):
                    out[part[int(pos)]][k] = Held(int(n), digest_of_halves(hi, lo))
        return [out[i] for i in range(len(nodes))]

    def rows(self, node: Node) -> Iterator[Ours]:
        where, params = _filter(node)
        for r in self.conn.execute(sa.text(
                f"SELECT {_COLS} FROM licence_recon_latest l WHERE {where} ORDER BY l.licence_key"), params):  # noqa: S608
            yield Ours(*r[:6])

    def rows_many(self, nodes: list[Node]) -> list[list[Ours]]:
        """The rows of each node; NODES_PER_QUERY nodes of a day or below per query."""
        out: list[list[Ours]] = [[] if len(n.day) == 10 else list(self.rows(n)) for n in nodes]
        low = [i for i, n in enumerate(nodes) if len(n.day) == 10]
        for j in range(0, len(low), NODES_PER_QUERY):
            part = low[j : j + NODES_PER_QUERY]
            join, params = _nodes_join([nodes[i] for i in part])
            for r in self.conn.execute(sa.text(
                    f"SELECT {_COLS}, n.column5 FROM licence_recon_latest l {join} "  # noqa: S608
                    "ORDER BY l.licence_key"), params):
                out[part[int(r[6])]].append(Ours(*r[:6]))
        return out

    def outbox_of(self, idem_keys: list[str]) -> dict[str, tuple[int, str]]:
        """idem_key -> (outbox id, outbox status), by the unique index, for the licences that differ."""
        found: dict[str, tuple[int, str]] = {}
        for i in range(0, len(idem_keys), 500):
            for k, oid, status in self.conn.execute(
                sa.text("SELECT idem_key, id, status FROM licence_outbox WHERE idem_key IN :keys")
                .bindparams(sa.bindparam("keys", expanding=True)), {"keys": idem_keys[i : i + 500]}):
                found[k] = (int(oid), str(status))
        return found

    def known(self, keys: list[str]) -> set[str]:
        """Which of these licence keys we hold (in any node)."""
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            found.update(self.conn.execute(
                sa.text("SELECT licence_key FROM licence_recon_latest WHERE licence_key IN :keys")
                .bindparams(sa.bindparam("keys", expanding=True)), {"keys": keys[i : i + 500]}).scalars())
        return found
