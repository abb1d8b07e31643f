"""Structured logs: one JSON object per line, with the request id of the work being done.

``configure_logging(service)`` is called by the web app, and can be called by the worker and the
city registry, so that every process writes the same shape:

    {"ts": "2026-11-27T01:20:00.123Z", "level": "INFO", "logger": "gaogang.access",
     "message": "GET /search 200 12.3 ms", "service": "web", "request_id": "…", ...extras}

The request id lives in a ContextVar, so it follows the code of one request (or one task) in any
module without passing it around; ``bind_request_id`` sets it for a block of work (a Celery task
carrying the id of the web request that recorded the change, for example).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's id only when it is short and plain (no log injection, no header smuggling).
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gaogang_request_id", default=None)

# Attributes every LogRecord has; anything else passed via ``extra=`` is written as a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> bool:
    return bool(value) and _REQUEST_ID_RE.match(value or "") is not None


def get_request_id() -> str | None:
    """The id of the request or task being handled in this context, or None outside one."""
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


@contextmanager
def bind_request_id(value: str | None) -> Iterator[str]:
    """Run a block under a request id (a well-formed given one, else a new one)."""
    rid = value if value and valid_request_id(value) else new_request_id()
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: ts, level, logger, message, request_id, extras."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            body["service"] = self.service
        body["request_id"] = getattr(record, "request_id", None) or _request_id.get()
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key in body or key.startswith("_"):
                continue
            body[key] = value
        if record.exc_info:
            body["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            body["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=False, default=str)


_HANDLER_FLAG = "_gaogang_json"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at emit time (test runners swap it out)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(service: str, level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the root logger's output as JSON lines to ``stream`` (stderr by default).

    Idempotent: calling it again (a second app in the same process, tests) replaces our handler
    instead of adding another, and leaves handlers installed by others (pytest's caplog) alone.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_FLAG, False):
            root.removeHandler(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter(service))
    setattr(handler, _HANDLER_FLAG, True)
    root.addHandler(handler)
    root.setLevel(level)
    # Werkzeug's own access line duplicates ours and is not JSON.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
