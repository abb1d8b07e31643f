"""HTTP client of the city registry: HMAC-signed requests on one keep-alive connection.

Maps the registry's answers to the sync's error kinds (licenses.sync): timeouts, connection errors,
429 and 5xx are RegistryUnavailableError (retried with backoff); a 401 ``stale_timestamp`` is
RegistryClockSkewError (retryable: this host's clock is off, an alert, not a bad record); anything we
cannot trust is a RegistryProtocolError. The signing scheme is documented in docs/city_registry.md.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from licenses.sync import (
    RESULT_STATUSES,
    RecordResult,
    RegistryClockSkewError,
    RegistryProtocolError,
    RegistryTreeUnsupportedError,
    RegistryUnavailableError,
)

TREE_SCHEME = "md5-sum64"  # licenses.reconcile_tree's digest; the registry names the one it computes


def sign(key: str, method: str, path: str, timestamp: str, body: bytes) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, as httpx builds it by default: building one loads the CA bundle
    (about 20 ms of CPU), and every client (a worker's, each reconciliation's, the admin pages') built
    its own."""
    return httpx.create_ssl_context()


class RegistryClient:
    def __init__(self, base_url: str, key: str, client_id: str, *, timeout: float = 10.0,
                 connect_timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.client_id = client_id
        self._http = httpx.Client(
            base_url=self.base_url,
            verify=_tls_context(),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_keepalive_connections=4, max_connections=8),
        )
        # Traffic of this client (bodies only, as sent and received): the cost of a reconciliation.
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, body: bytes = b"") -> httpx.Response:
        ts = str(int(time.time()))
        headers = {
            "X-Client-Id": self.client_id,
            "X-Timestamp": ts,
            "X-Signature": sign(self.key, method, path, ts, body),
            "Content-Type": "application/json",
        }
        self.requests += 1
        self.bytes_sent += len(body)
        try:
            response = self._http.request(method, path, content=body, headers=headers)
            self.bytes_received += len(response.content)
        except httpx.TimeoutException as exc:
            raise RegistryUnavailableError(f"请求超时（{exc.__class__.__name__}）") from exc
        except httpx.TransportError as exc:
            raise RegistryUnavailableError(f"连接失败（{exc.__class__.__name__}: {exc}）") from exc
        except httpx.HTTPError as exc:
            # No TransportError, e.g. DecodingError (a body announced as gzip that is not): an answer we
            # cannot trust. Uncaught, it failed the drain without recording the attempt, so the rows went
            # out again with every drain and sweep, with no backoff.
            raise RegistryProtocolError(f"答复无法读取（{exc.__class__.__name__}: {exc}）") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise RegistryUnavailableError(f"HTTP {response.status_code}：{_message(response)}")
        if response.status_code == 401 and _code(response) == "stale_timestamp":
            raise RegistryClockSkewError(
                f"HTTP 401 stale_timestamp（本机时间 {ts}）：{_message(response)}")
        if response.status_code != 200:
            raise RegistryProtocolError(f"HTTP {response.status_code}：{_message(response)}")
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise RegistryProtocolError(f"答复不是合法的 JSON：{response.text[:120]!r}") from exc

    def post_batch(self, batch_id: str, envelopes: Sequence[str | dict[str, Any]]) -> list[RecordResult]:
        """Post one batch; ``envelopes`` are JSON texts (licenses.sync.envelope_json) or dicts."""
        parts = [e.encode() if isinstance(e, str) else orjson.dumps(e, default=str) for e in envelopes]
        body = b'{"batch_id":' + orjson.dumps(batch_id) + b',"records":[' + b",".join(parts) + b"]}"
        data = self._json(self.request("POST", "/api/v1/licences/batch", body))
        if not isinstance(data, dict) or "error" in data or not isinstance(data.get("results"), list):
            raise RegistryProtocolError(f"答复缺少 results（{str(data)[:200]}）")
        results = data["results"]
        if len(results) != len(envelopes) or data.get("count") != len(results):
            raise RegistryProtocolError(f"答复条数 {len(results)} 与请求条数 {len(envelopes)} 不一致")
        out = []
        for item in results:
            if not isinstance(item, dict) or item.get("status") not in RESULT_STATUSES:
                status = item.get("status") if isinstance(item, dict) else item
                raise RegistryProtocolError(f"未知的记录状态 {status!r}")
            # A refusal's message is another system's free form: an object or a number in it made the
            # drain fail on masking it (TypeError), every batch again, with no backoff and no dead letter.
            message = item.get("message")
            if message is not None and not isinstance(message, str):
                message = orjson.dumps(message, default=str).decode()
            out.append(RecordResult(str(item.get("idem_key")), item["status"], message, item.get("version")))
        return out

    def digests(self, issuer_code: str | None = None, since: str | None = None,
                until: str | None = None) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("issuer_code", issuer_code), ("since", since), ("until", until)) if v}
        path = "/api/v1/reconciliation" + (f"?{urlencode(query)}" if query else "")
        data = self._json(self.request("GET", path))
        if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
            raise RegistryProtocolError("对账答复缺少 groups")
        groups: list[dict[str, Any]] = data["groups"]
        return groups

    def records(self, issuer_code: str, day: str) -> list[dict[str, Any]]:
        path = "/api/v1/reconciliation/records?" + urlencode({"issuer_code": issuer_code, "day": day})
        data = self._json(self.request("GET", path))
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise RegistryProtocolError("对账明细答复缺少 records")
        records: list[dict[str, Any]] = data["records"]
        return records

    def _tree(self, path: str, nodes: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
        body = orjson.dumps({"scheme": TREE_SCHEME, "nodes": nodes})
        try:
            data = self._json(self.request("POST", path, body))
        except RegistryProtocolError as exc:
            if str(exc).startswith(("HTTP 404", "HTTP 400：不支持的摘要方案")):
                raise RegistryTreeUnsupportedError(str(exc)) from exc
            raise
        if (not isinstance(data, dict) or data.get("scheme") != TREE_SCHEME
                or not isinstance(data.get("nodes"), list) or len(data["nodes"]) != len(nodes)
                or not all(isinstance(n, dict) and isinstance(n.get(field), list) for n in data["nodes"])):
            raise RegistryProtocolError(f"摘要树答复不完整（{str(data)[:200]}）")
        answer: list[dict[str, Any]] = data["nodes"]
        return answer

    def tree_children(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._tree("/api/v1/reconciliation/tree", nodes, "children")

    def tree_records(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._tree("/api/v1/reconciliation/tree/records", nodes, "records")

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self._json(self.request("GET", "/api/v1/stats"))
        return data

    def set_faults(self, **switches: Any) -> dict[str, Any]:
        """Tests only: the registry must run with --enable-faults."""
        body = orjson.dumps(switches)
        data: dict[str, Any] = self._json(self.request("PUT", "/_faults", body))
        return data

    def reset(self) -> None:
        self.request("POST", "/_reset")


def _code(response: httpx.Response) -> str | None:
    try:
        code = response.json().get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("error", {}).get("message") or data)[:300]
    except (ValueError, AttributeError):
        return response.text[:300]
