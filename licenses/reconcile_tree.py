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


def digest_of(total: Any) -> str:
    return f"{int(total or 0) % _MOD:016x}"


def check_issuer(issuer_code: str | None) -> None:
    if issuer_code is not None and not _ISSUER.fullmatch(issuer_code):
        raise ValueError(f"issuer_code {issuer_code!r} 不是 18 位统一社会信用代码")


def digest_of_halves(hi: Any, lo: Any) -> str:
    """A node's digest from the sums of its rows' hash halves (high and low 32 bits, unsigned)."""
    return f"{((int(hi or 0) << 32) + int(lo or 0)) % _MOD:016x}"


class _Sum64:
    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int | None) -> None:
        if value is not None:
            self.total += value

    def finalize(self) -> str:
        return str(self.total % _MOD)  # text: SQLite integers stop at 2**63


def install_sqlite_functions(dbapi_conn: sqlite3.Connection) -> None:
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


def _days_join(days: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
    """A join keeping the rows of these (issuer, day)s (``JOIN (VALUES …) n``): an OR of 500 days was
    evaluated on every row of a sequential scan; the join probes the (issuer, day) index per day."""
    values = ", ".join(f"(:i{k}, :d{k})" for k in range(len(days)))
    params: dict[str, Any] = {}
    for k, (issuer, day) in enumerate(days):
        params[f"i{k}"], params[f"d{k}"] = issuer, day
    return f"JOIN (VALUES {values}) n ON l.issuer_code = n.column1 AND l.day = n.column2", params


@dataclass
class Ours:
    idem_key: str  # its outbox row (looked up only for the licences that differ: outbox_of)
    licence_key: str
    identifier: str
    revision: int
    status: str
    day: str


_ROW = ("SELECT l.idem_key, l.licence_key, l.identifier, l.revision, l.lstatus, l.day, l.issuer_code, "
        "l.bucket FROM licence_recon_latest l")
DAYS_PER_QUERY = 64  # days of a level per query: few enough that PostgreSQL probes the index


class Expected:
    """The district's side of the tree, read from the baseline kept on write (licenses.recon_state)."""

    def __init__(self, session: Session, days: dict[tuple[str, str], tuple[int, int, int]]) -> None:
        """``days``: (issuer, day) -> (count, sum of hash high halves, sum of low halves), as
        licenses.recon_state.day_sums gives them."""
        self.conn = session.connection()
        self.days = days
        self._digest = digest_of_halves

    def drop(self) -> None:
        """Nothing to drop (kept for callers of the temporary-table version)."""

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
        return {k: Held(n, self._digest(hi, lo)) for k, (n, hi, lo) in sums.items()}

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
            by_day: dict[tuple[str, str], dict[str, Held]] = {}  # a node looks at its own day only
            days = sorted({(str(nodes[i].issuer_code), nodes[i].day) for i in idx})
            for j in range(0, len(days), DAYS_PER_QUERY):
                join, params = _days_join(days[j : j + DAYS_PER_QUERY])
                sql = (f"SELECT l.issuer_code, l.day, {key}, count(*), sum(l.hi), sum(l.lo) "  # noqa: S608
                       f"FROM licence_recon_latest l {join} GROUP BY l.issuer_code, l.day, {key}")
                for issuer, day, k, n, hi, lo in self.conn.execute(sa.text(sql), params):
                    by_day.setdefault((issuer, day), {})[k] = Held(int(n), self._digest(hi, lo))
            for i in idx:
                node = nodes[i]
                out[i] = {k: held for k, held in by_day.get((str(node.issuer_code), node.day), {}).items()
                          if k.startswith(node.bucket)}
        return [out[i] for i in range(len(nodes))]

    def children(self, node: Node) -> dict[str, Held]:
        return self.children_many([node])[0]

    def rows(self, node: Node) -> Iterator[Ours]:
        where, params = _filter(node)
        for r in self.conn.execute(sa.text(f"{_ROW} WHERE {where} ORDER BY l.licence_key"), params):
            yield Ours(*r[:6])

    def rows_many(self, nodes: list[Node]) -> list[list[Ours]]:
        """The rows of each node, in one query per DAYS_PER_QUERY days for the nodes of a day or below."""
        days = sorted({(str(n.issuer_code), n.day) for n in nodes if len(n.day) == 10})
        by_day: dict[tuple[str, str], list[tuple[str, Ours]]] = {}
        for i in range(0, len(days), DAYS_PER_QUERY):
            join, params = _days_join(days[i : i + DAYS_PER_QUERY])
            for r in self.conn.execute(sa.text(f"{_ROW} {join} ORDER BY l.licence_key"), params):
                by_day.setdefault((r[6], r[5]), []).append((r[7], Ours(*r[:6])))
        return [[o for b, o in by_day.get((str(n.issuer_code), n.day), []) if b.startswith(n.bucket)]
                if len(n.day) == 10 else list(self.rows(n)) for n in nodes]

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
