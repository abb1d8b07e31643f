"""The registry as a WSGI app, for gunicorn with several processes on one database:

    CITY_REGISTRY_DATABASE_URL=postgresql+psycopg://.../registry CITY_REGISTRY_KEY=... \\
        gunicorn -w 2 -b 127.0.0.1:5001 'city_registry.wsgi:create_app()'

``python -m city_registry serve --workers N`` starts exactly that. Every process opens its own engine
(gunicorn forks before ``create_app`` runs in each worker only when not preloaded; the app is never
preloaded, so no connection crosses a fork). The ordering rule is the store's conditional upsert and
the fault switches are rows, so both hold across the processes.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from city_registry.app import RegistryApp, header_name
from city_registry.store import RegistryStore

StartResponse = Callable[..., Any]
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Payload Too Large",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _target(environ: dict[str, Any]) -> str:
    """The request target as the client sent it (the signature covers it)."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/:@!$&'()*+,;=-._~")
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    return {header_name(k[5:]): v for k, v in environ.items() if k.startswith("HTTP_")}


def create_app(
    database_url: str | None = None, key: str | None = None, enable_faults: bool | None = None
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    url = database_url or os.environ.get("CITY_REGISTRY_DATABASE_URL") or "sqlite:///instance/city_registry.db"
    secret = key or os.environ.get("CITY_REGISTRY_KEY")
    if not secret:
        raise SystemExit("CITY_REGISTRY_KEY is not set: the registry needs the shared HMAC key")
    faults = enable_faults if enable_faults is not None else os.environ.get("CITY_REGISTRY_FAULTS") == "1"
    registry = RegistryApp(RegistryStore(url), secret, faults)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        stream = environ["wsgi.input"]
        reply = registry.handle(
            environ["REQUEST_METHOD"], _target(environ), _headers(environ), environ.get("CONTENT_LENGTH"),
            stream.read,
        )
        if reply.drop:
            # The "down" fault: close the connection without an answer, as a dead host would. gunicorn
            # hands the socket over; another server gets a 503 with the connection closed.
            sock = environ.get("gunicorn.socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                return []
            reply.status, reply.body = 503, b""
            reply.headers["Connection"] = "close"
        headers = [("Content-Type", "application/json; charset=utf-8"),
                   ("Content-Length", str(len(reply.body))), *reply.headers.items()]
        start_response(f"{reply.status} {_REASONS.get(reply.status, 'Unknown')}", headers)
        return [reply.body]

    return app
