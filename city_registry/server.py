"""HTTP front of the reference city registry (stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive).

Fault switches (``PUT /_faults``, only when started with ``--enable-faults``) let tests make the
registry slow, flaky, down, or wrong in the ways a real remote system is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from city_registry import protocol
from city_registry.store import RegistryStore

log = logging.getLogger("city_registry")

BAD_RESPONSES = ("malformed", "wrong_count", "unknown_status", "error_body")
_FAULT_DEFAULTS: dict[str, Any] = {
    "error_rate": 0.0,  # share of API requests answered with status_code
    "status_code": 503,
    "latency_ms": 0,  # added before every API request
    "down": False,  # close connections without answering
    "down_until": 0.0,  # Unix time; down until then (set via down_for_s)
    "bad_response": None,  # one of BAD_RESPONSES, for batch answers
    "bad_rate": 1.0,
    "reject_keys": [],  # idem_keys rejected as invalid
    "clock_skew_s": 0,  # the registry's clock runs this many seconds off (API requests only)
}


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.state: dict[str, Any] = dict(_FAULT_DEFAULTS)
        self.counters = {"requests": 0, "faulted": 0, "dropped": 0, "bad": 0}

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - set(_FAULT_DEFAULTS) - {"down_for_s", "reset"}
        if unknown:
            raise ValueError(f"unknown fault switches: {sorted(unknown)}")
        with self._lock:
            if changes.get("reset"):
                self.state = dict(_FAULT_DEFAULTS)
            for k, v in changes.items():
                if k == "down_for_s":
                    self.state["down_until"] = time.time() + float(v)
                elif k != "reset":
                    self.state[k] = v
            if self.state["bad_response"] not in (None, *BAD_RESPONSES):
                raise ValueError(f"bad_response must be one of {BAD_RESPONSES}")
            return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return {**self.state, "reject_keys": list(self.state["reject_keys"]), "counters": dict(self.counters)}

    def is_down(self) -> bool:
        return bool(self.state["down"]) or time.time() < self.state["down_until"]


class RegistryServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], store: RegistryStore, key: str,
                 enable_faults: bool = False) -> None:
        super().__init__(address, Handler)
        self.store = store
        self.key = key
        self.enable_faults = enable_faults
        self.faults = Faults()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Answers go out as one write with TCP_NODELAY: a separate small write after the headers waited
    # for the client's delayed ACK (Nagle), about 40 ms per batch on loopback.
    disable_nagle_algorithm = True
    server: RegistryServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: Any, raw: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:
        data = raw if raw is not None else orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        buffered = getattr(self, "_headers_buffer", None)  # absent for an HTTP/0.9 request
        if buffered is None:
            self.wfile.write(data)
            return
        buffered.extend((b"\r\n", data))  # end_headers() without its flush: one write below
        self.flush_headers()

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"code": code, "message": message}}, headers=headers)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > 64 * 1024 * 1024:
            self._error(413, "too_large", "请求体过大或长度无效")
            return None
        return self.rfile.read(length) if length else b""

    def _authenticate(self, body: bytes, skewed: bool = False) -> str | None:
        client = self.headers.get("X-Client-Id", "")
        ts = self.headers.get("X-Timestamp", "")
        sig = self.headers.get("X-Signature", "")
        if not (client and ts and sig):
            self._error(401, "unauthenticated", "缺少签名头 X-Client-Id / X-Timestamp / X-Signature")
            return None
        # The clock-skew fault moves the registry's clock; the control paths keep the true time so a
        # test can always switch the fault off again.
        now = time.time() + (float(self.server.faults.state["clock_skew_s"]) if skewed else 0.0)
        try:
            skew = abs(now - int(ts))
        except ValueError:
            skew = float("inf")
        if skew > protocol.MAX_SKEW_SECONDS:
            self._error(401, "stale_timestamp", "时间戳缺失或偏差超过 300 秒")
            return None
        if not protocol.signature_valid(self.server.key, self.command, self.path, ts, body, sig):
            self._error(401, "bad_signature", "签名无效")
            return None
        return client

    def do_GET(self) -> None:
        self._safely()

    def do_POST(self) -> None:
        self._safely()

    def do_PUT(self) -> None:
        self._safely()

    def _safely(self) -> None:
        try:
            self._dispatch()
        except Exception:
            log.exception("error handling %s %s", self.command, self.path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._error(500, "internal_error", "市级证照库内部错误")

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path == "/healthz" and self.command == "GET":
            self._send(200, {"status": "ok"})
            return
        faults = self.server.faults
        is_control = path.startswith("/_")
        if not is_control:
            with faults._lock:
                faults.counters["requests"] += 1
            if faults.is_down():
                with faults._lock:
                    faults.counters["dropped"] += 1
                self.close_connection = True
                return
            if faults.state["latency_ms"]:
                time.sleep(faults.state["latency_ms"] / 1000)
        body = self._read_body()
        if body is None:
            return
        client = self._authenticate(body, skewed=not is_control)
        if client is None:
            return
        if is_control:
            self._control(path, body)
            return
        if faults.state["error_rate"] and random.random() < faults.state["error_rate"]:  # noqa: S311
            with faults._lock:
                faults.counters["faulted"] += 1
            status = int(faults.state["status_code"])
            headers = {"Retry-After": "1"} if status in (429, 503) else None
            self._error(status, "fault_injected", f"故障注入：{status}", headers)
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == "/api/v1/licences/batch" and self.command == "POST":
            self._batch(client, body)
        elif path == "/api/v1/reconciliation" and self.command == "GET":
            self._send(200, {"groups": self.server.store.digests(
                query.get("issuer_code"), query.get("since"), query.get("until"))})
        elif path == "/api/v1/reconciliation/records" and self.command == "GET":
            if not (query.get("issuer_code") and protocol.parse_day(query.get("day"))):
                self._error(400, "bad_request", "需要 issuer_code 和 day (YYYY-MM-DD)")
                return
            self._send(200, {"records": self.server.store.records(query["issuer_code"], query["day"])})
        elif path == "/api/v1/stats" and self.command == "GET":
            self._send(200, self.server.store.stats())
        else:
            self._error(404, "not_found", "没有这个接口")

    def _batch(self, client: str, body: bytes) -> None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._error(400, "malformed_json", "请求体不是合法的 JSON")
            return
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list) or not records:
            self._error(400, "bad_request", "请求体应为 {\"batch_id\", \"records\": [...]}，且 records 非空")
            return
        if len(records) > protocol.MAX_BATCH:
            self._error(413, "batch_too_large", f"单批最多 {protocol.MAX_BATCH} 条")
            return
        faults = self.server.faults
        reject = set(faults.state["reject_keys"])
        if reject:
            kept, forced = [], {}
            for i, env in enumerate(records):
                if isinstance(env, dict) and env.get("idem_key") in reject:
                    forced[i] = {"idem_key": env["idem_key"], "status": "rejected",
                                 "message": "故障注入：拒收"}
                else:
                    kept.append(env)
            applied = iter(self.server.store.apply_batch(client, kept))
            results = [forced[i] if i in forced else next(applied) for i in range(len(records))]
        else:
            results = self.server.store.apply_batch(client, records)
        answer = {"batch_id": data.get("batch_id"), "count": len(results), "results": results}
        bad = faults.state["bad_response"]
        if bad and random.random() < faults.state["bad_rate"]:  # noqa: S311
            with faults._lock:
                faults.counters["bad"] += 1
            if bad == "malformed":
                self._send(200, None, raw=b'{"results": [')
                return
            if bad == "wrong_count":
                answer["results"] = results[:-1]
            elif bad == "unknown_status":
                answer["results"] = [{**results[0], "status": "accepted-ish"}, *results[1:]]
            elif bad == "error_body":
                answer = {"error": {"code": "internal", "message": "数据库繁忙"}}
        self._send(200, answer)

    def _control(self, path: str, body: bytes) -> None:
        if not self.server.enable_faults:
            self._error(404, "not_found", "故障开关未启用（--enable-faults）")
            return
        if path == "/_faults" and self.command == "GET":
            self._send(200, self.server.faults.snapshot())
        elif path == "/_faults" and self.command == "PUT":
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("body must be an object")
                self._send(200, self.server.faults.update(changes))
            except ValueError as exc:
                self._error(400, "bad_request", str(exc))
        elif path == "/_reset" and self.command == "POST":
            self.server.store.reset()
            self.server.faults.update({"reset": True})
            self._send(200, {"status": "reset"})
        else:
            self._error(404, "not_found", "没有这个接口")


def serve(host: str, port: int, database_url: str, key: str, enable_faults: bool = False) -> None:
    store = RegistryStore(database_url)
    server = RegistryServer((host, port), store, key, enable_faults)
    print(f"city registry listening on http://{host}:{server.server_address[1]} "
          f"(database {store.engine.url.render_as_string(hide_password=True)}, "
          f"faults {'on' if enable_faults else 'off'})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
