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

from core.pii import mask_personal_data

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
        if record.exc_text:  # set (and masked) by the scrubber
            body["exc_info"] = record.exc_text
        elif record.exc_info:
            body["exc_info"] = mask_personal_data(self.formatException(record.exc_info))
        if record.stack_info:
            body["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=False, default=str)


_HANDLER_FLAG = "_gaogang_json"
_FACTORY_FLAG = "_gaogang_scrubbing"
_SECRET_KEYS = ("password", "secret", "token", "authorization", "cookie")
_plain_formatter = logging.Formatter()
_MASKED = "_gaogang_message_masked"  # set on a record whose message is masked (scrub_record)


def _scrub_value(key: str, value: Any, depth: int = 0) -> Any:
    if any(word in key.lower() for word in _SECRET_KEYS) and value:
        return "[已隐藏]"
    if isinstance(value, str):
        return mask_personal_data(value)
    if depth < 4 and isinstance(value, dict):
        return {k: _scrub_value(str(k), v, depth + 1) for k, v in value.items()}
    if depth < 4 and isinstance(value, list | tuple):
        return [_scrub_value(key, v, depth + 1) for v in value]
    return value


def scrub_record(record: logging.LogRecord, *, extras: bool = True) -> None:
    """Mask personal data and credentials in a record, in place: its message (with the arguments
    merged in), its exception and stack text, and (``extras``) the fields passed with ``extra=``.

    Exception messages quote database values (PostgreSQL's "invalid input syntax ... \"<value>\"",
    "Key (holder_code)=(...) already exists"), so the formatted traceback is masked and the
    exception object dropped from the record: no handler can format it again unmasked."""
    if not getattr(record, _MASKED, False):
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: log what there is rather than nothing
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_personal_data(message)
        record.args = None
        # msg and args cannot be changed after this (``extra=`` may not name them), so the handler's
        # filter need not mask the message a second time (that was a tenth of the access log's cost).
        setattr(record, _MASKED, True)
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = _plain_formatter.formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = mask_personal_data(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_personal_data(record.stack_info)
    if extras:
        for key, value in list(vars(record).items()):
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            setattr(record, key, _scrub_value(key, value))


class PersonalDataFilter(logging.Filter):
    """A handler filter that masks personal data in every record it lets through (see scrub_record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def install_log_scrubbing() -> None:
    """Mask message and exception of every record when it is created, so that handlers others
    install (gunicorn's, Celery's, pytest's) never see them unmasked. Extra fields are set on the
    record after the factory runs; our own handler's PersonalDataFilter masks those.

    ``configure_logging`` calls it; processes that keep their own logging setup (the Celery
    worker) call it directly. Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, _FACTORY_FLAG, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        scrub_record(record, extras=False)
        return record

    setattr(factory, _FACTORY_FLAG, True)
    logging.setLogRecordFactory(factory)


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
    handler.addFilter(PersonalDataFilter())
    setattr(handler, _HANDLER_FLAG, True)
    root.addHandler(handler)
    root.setLevel(level)
    install_log_scrubbing()
    # Werkzeug's own access line duplicates ours and is not JSON.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
