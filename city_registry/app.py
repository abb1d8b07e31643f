"""The registry's request handling, independent of the HTTP server in front of it.

Two fronts call ``RegistryApp.handle``: the stdlib threaded server (``python -m city_registry serve``,
the zero-setup default) and a WSGI app (``city_registry.wsgi``) that gunicorn runs in several processes
on one PostgreSQL database. Nothing here is held per process that the ordering rule or the fault
switches depend on: the rank rule is the store's conditional upsert and the switches are rows.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from city_registry import protocol
from city_registry.faults import Faults
from city_registry.store import RegistryStore
from city_registry.tree import MAX_NODES, MAX_RECORDS, SCHEME, Node, RegistryTree

log = logging.getLogger("city_registry")

MAX_BODY = 64 * 1024 * 1024
_TREE_PATHS = ("/api/v1/reconciliation/tree", "/api/v1/reconciliation/tree/records")


@dataclass
class Reply:
    """What to answer; ``drop`` closes the connection without answering (the "down" fault)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    close: bool = False  # answer, then close the connection (after an internal error)


def header_name(name: str) -> str:
    """One spelling of a header name for both fronts ("x-client-id" and HTTP_X_CLIENT_ID -> "X-Client-Id")."""
    return "-".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, orjson.dumps(body), dict(headers or {}))


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return _json(status, {"error": {"code": code, "message": message}}, headers)


class RegistryApp:
    def __init__(self, store: RegistryStore, key: str, enable_faults: bool = False) -> None:
        self.store = store
        self.key = key
        self.enable_faults = enable_faults
        self.faults = Faults(store.engine)
        self.tree = RegistryTree(store.engine, store.writer_lock)

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        content_length: str | None,
        read: Callable[[int], bytes],
    ) -> Reply:
        """``target`` is the request target as sent (path and query): the signature covers it."""
        try:
            return self._dispatch(method, target, headers, content_length, read)
        except Exception:
            log.exception("error handling %s %s", method, target)
            reply = _error(500, "internal_error", "市级证照库内部错误")
            reply.close = True
            return reply

    def _dispatch(
        self, method: str, target: str, headers: Mapping[str, str], content_length: str | None,
        read: Callable[[int], bytes],
    ) -> Reply:
        url = urlsplit(target)
        path = url.path
        if path == "/healthz" and method == "GET":
            return _json(200, {"status": "ok"})
        is_control = path.startswith("/_")
        # Without --enable-faults the switches are never read: the hot path costs nothing.
        state = self.faults.state() if self.enable_faults else None
        if state is not None and not is_control:
            self.faults.count("requests")
            if Faults.is_down(state):
                self.faults.count("dropped")
                return Reply(drop=True)
            if state["latency_ms"]:
                time.sleep(state["latency_ms"] / 1000)
        try:
            length = int(content_length or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            return _error(413, "too_large", "请求体过大或长度无效")
        body = read(length) if length else b""
        skew = float(state["clock_skew_s"]) if state is not None and not is_control else 0.0
        client, refusal = self._authenticate(method, target, headers, body, skew)
        if refusal is not None:
            return refusal
        if is_control:
            return self._control(method, path, body)
        if state is not None and state["error_rate"] and random.random() < state["error_rate"]:  # noqa: S311
            self.faults.count("faulted")
            status = int(state["status_code"])
            extra = {"Retry-After": "1"} if status in (429, 503) else None
            return _error(status, "fault_injected", f"故障注入：{status}", extra)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == "/api/v1/licences/batch" and method == "POST":
            return self._batch(client, body, state)
        if path == "/api/v1/reconciliation" and method == "GET":
            return _json(200, {"groups": self.store.digests(
                query.get("issuer_code"), query.get("since"), query.get("until"))})
        if path == "/api/v1/reconciliation/records" and method == "GET":
            if not (query.get("issuer_code") and protocol.parse_day(query.get("day"))):
                return _error(400, "bad_request", "需要 issuer_code 和 day (YYYY-MM-DD)")
            return _json(200, {"records": self.store.records(query["issuer_code"], query["day"])})
        if path in _TREE_PATHS and method == "POST":
            return self._tree(path.endswith("/records"), body)
        if path == "/api/v1/stats" and method == "GET":
            return _json(200, self.store.stats())
        return _error(404, "not_found", "没有这个接口")

    def _authenticate(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes, skew_s: float
    ) -> tuple[str, Reply | None]:
        client = headers.get("X-Client-Id", "")
        ts = headers.get("X-Timestamp", "")
        sig = headers.get("X-Signature", "")
        if not (client and ts and sig):
            return client, _error(401, "unauthenticated",
                                  "缺少签名头 X-Client-Id / X-Timestamp / X-Signature")
        # The clock-skew fault moves the registry's clock; the control paths keep the true time so a
        # test can always switch the fault off again.
        now = time.time() + skew_s
        try:
            off = abs(now - int(ts))
        except ValueError:
            off = float("inf")
        if off > protocol.MAX_SKEW_SECONDS:
            return client, _error(401, "stale_timestamp", "时间戳缺失或偏差超过 300 秒")
        if not protocol.signature_valid(self.key, method, target, ts, body, sig):
            return client, _error(401, "bad_signature", "签名无效")
        return client, None

    def _batch(self, client: str, body: bytes, state: dict[str, Any] | None) -> Reply:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "malformed_json", "请求体不是合法的 JSON")
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list) or not records:
            return _error(400, "bad_request",
                          "请求体应为 {\"batch_id\", \"records\": [...]}，且 records 非空")
        if len(records) > protocol.MAX_BATCH:
            return _error(413, "batch_too_large", f"单批最多 {protocol.MAX_BATCH} 条")
        reject = set(state["reject_keys"]) if state is not None else set()
        if reject:
            kept, forced = [], {}
            for i, env in enumerate(records):
                if isinstance(env, dict) and env.get("idem_key") in reject:
                    forced[i] = {"idem_key": env["idem_key"], "status": "rejected",
                                 "message": "故障注入：拒收"}
                else:
                    kept.append(env)
            applied = iter(self.store.apply_batch(client, kept))
            results = [forced[i] if i in forced else next(applied) for i in range(len(records))]
        else:
            results = self.store.apply_batch(client, records)
        answer: dict[str, Any] = {"batch_id": data.get("batch_id"), "count": len(results), "results": results}
        bad = state["bad_response"] if state is not None else None
        if bad and state is not None and random.random() < state["bad_rate"]:  # noqa: S311
            self.faults.count("bad")
            if bad == "malformed":
                return Reply(200, b'{"results": [', {})
            if bad == "wrong_count":
                answer["results"] = results[:-1]
            elif bad == "unknown_status":
                answer["results"] = [{**results[0], "status": "accepted-ish"}, *results[1:]]
            elif bad == "error_body":
                answer = {"error": {"code": "internal", "message": "数据库繁忙"}}
        return _json(200, answer)

    def _tree(self, records: bool, body: bytes) -> Reply:
        """The digest tree (city_registry.tree): children or records of up to MAX_NODES nodes."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "malformed_json", "请求体不是合法的 JSON")
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
            return _error(400, "bad_request", "请求体应为 {\"scheme\", \"nodes\": [...]}，且 nodes 非空")
        if data.get("scheme", SCHEME) != SCHEME:
            return _error(400, "unsupported_scheme",
                          f"不支持的摘要方案 {data.get('scheme')!r}，支持 {SCHEME}")
        if len(data["nodes"]) > MAX_NODES:
            return _error(413, "too_many_nodes", f"单次最多 {MAX_NODES} 个节点")
        try:
            nodes = [Node.parse(n) for n in data["nodes"]]
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        if not records:
            return _json(200, {"scheme": SCHEME, "nodes": self.tree.children(nodes)})
        listed = self.tree.records(nodes)
        if listed is None:
            return _error(413, "too_many_records", f"单次最多列出 {MAX_RECORDS} 条，请细分节点")
        return _json(200, {"scheme": SCHEME, "nodes": listed})

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        if not self.enable_faults:
            return _error(404, "not_found", "故障开关未启用（--enable-faults）")
        if path == "/_faults" and method == "GET":
            return _json(200, self.faults.snapshot())
        if path == "/_faults" and method == "PUT":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("body must be an object")
                return _json(200, self.faults.update(changes))
            except ValueError as exc:
                return _error(400, "bad_request", str(exc))
        if path == "/_reset" and method == "POST":
            self.store.reset()
            self.faults.update({"reset": True})
            return _json(200, {"status": "reset"})
        return _error(404, "not_found", "没有这个接口")
