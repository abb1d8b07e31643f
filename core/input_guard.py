"""The web app's one input boundary: every request is checked here before a view, a schema or a
query sees it.

In this order:

1. The body must be readable: a malformed chunked encoding (or a client that hangs up) is a 400,
   whatever the server (werkzeug raises OSError, gunicorn its own ParseException).
2. A JSON body must nest at most ``MAX_JSON_DEPTH`` levels: 400. ``json.loads`` on 100,000
   brackets raises RecursionError, which was a 500 before any authentication.
3. Operations the OpenAPI document marks as needing a bearer token answer 401 to anonymous
   callers here, before flask-smorest parses their arguments (it used to tell an anonymous
   caller 422 and which fields it got wrong). Then a JSON body that does not parse: 400.
4. Control characters and lone surrogates anywhere in the path, the query string, a form or a JSON
   body: 422 naming the field. PostgreSQL refuses NUL in text (a 500, and the bound values, a
   holder's name and ID number, in the error log), a lone surrogate cannot be encoded to UTF-8,
   and both were stored and synced where the database took them. Tab, LF and CR are allowed in
   values (multi-line text: reasons, notes, conditions) but not in path segments or field names;
   single-line fields are held to their own formats by their schemas.

The OpenAPI document states rule 4 as a ``pattern`` on every free-text field and path segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, request
from marshmallow import fields
from werkzeug.exceptions import HTTPException
from werkzeug.routing import UnicodeConverter

from core.text_rules import FIELD_MESSAGE as FIELD_MESSAGE  # the rule's one definition, used here
from core.text_rules import IN_TEXT as IN_TEXT
from core.web import error_response, require_login

MAX_JSON_DEPTH = 32

# C0 controls, DEL, C1 controls and UTF-16 surrogates (only a lone one can reach a Python str).
_IN_SEGMENT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# The same rule as JSON Schema patterns in the OpenAPI document, so that clients (and the API
# fuzzer, which generates both sides of every pattern) know it: text fields and path segments.
# Lone surrogates are left out of the patterns: several regex engines (Rust's, used by JSON Schema
# validators) cannot name them, and refuse the whole pattern. The check below still refuses them.
TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
SEGMENT_PATTERN = r"^[^/\u0000-\u001f\u007f-\u009f]*$"

FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


_MALFORMED = object()  # a JSON body that does not parse


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def init_app(app: Flask, api: Any) -> None:
    """Check every request at the boundary (register after the request id is set), and say so in
    the OpenAPI document (call before any blueprint is registered)."""
    app.before_request(check_request)
    api.ma_plugin.converter.add_attribute_function(_text_field_pattern)
    api.register_converter(UnicodeConverter, _segment_schema)


def _text_field_pattern(_converter: Any, field: Any, ret: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
    """apispec attribute function: every free-text field documents the characters it refuses."""
    if isinstance(field, fields.String) and ret.get("type") == "string" and not (
        {"pattern", "enum", "format"} & ret.keys()
    ):
        return {"pattern": TEXT_PATTERN}
    return {}


def _segment_schema(converter: UnicodeConverter) -> dict[str, Any]:
    """The schema of a ``string`` path parameter: its length (from the converter) and characters."""
    schema: dict[str, Any] = {"type": "string", "pattern": SEGMENT_PATTERN}
    bounds = re.fullmatch(r"\[\^/\]\{(\d+)(?:(,)(\d*))?\}", converter.regex)
    if bounds:
        low, comma, high = bounds.groups()
        schema["minLength"] = int(low)
        if not comma:
            schema["maxLength"] = int(low)
        elif high:
            schema["maxLength"] = int(high)
    return schema


def check_request() -> Any:
    try:
        body = _read_body()
        document = _parse_json(body)
        if _requires_login(request.endpoint, request.method):
            require_login()
        if document is _MALFORMED:  # a mistake in the content, told only to those allowed to send it
            raise _Refused(400, "bad_request", "请求格式错误：请求体不是有效的 JSON")
        _check_characters(document)
    except _Refused as refused:
        return error_response(refused.status, refused.code, refused.message, refused.details)
    return None


def _read_body() -> bytes:
    if request.method in ("GET", "HEAD", "OPTIONS") and not _has_body():
        return b""
    try:
        return request.get_data(cache=True)
    except HTTPException:  # 413 and friends already say what is wrong
        raise
    except Exception:  # whatever the server raises for a broken stream is the client's framing
        raise _Refused(400, "bad_request", "请求格式错误：请求体无法读取（如分块编码有误）") from None


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _parse_json(body: bytes) -> Any:
    if not body or not request.is_json:
        return None
    try:
        document = json.loads(body)
    except RecursionError:
        raise _Refused(400, "bad_request", f"请求格式错误：JSON 嵌套超过 {MAX_JSON_DEPTH} 层") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return _MALFORMED
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _Refused(400, "bad_request", f"请求格式错误：JSON 嵌套超过 {MAX_JSON_DEPTH} 层")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return document


def _protected(endpoint: str, method: str) -> bool:
    known: dict[tuple[str, str], bool] = current_app.extensions.setdefault("gaogang.protected_ops", {})
    if (endpoint, method) not in known:
        view = current_app.view_functions.get(endpoint)
        handler = getattr(getattr(view, "view_class", None), method.lower(), None) or view
        security = getattr(handler, "_apidoc", {}).get("manual_doc", {}).get("security")
        known[(endpoint, method)] = bool(security)
    return known[(endpoint, method)]


def _requires_login(endpoint: str | None, method: str) -> bool:
    """Whether the OpenAPI document says this operation needs a bearer token."""
    if endpoint is None or method == "OPTIONS":
        return False
    return _protected(endpoint, "GET" if method == "HEAD" else method)


def _check_characters(document: Any) -> None:
    bad: dict[str, list[str]] = {}
    if _IN_SEGMENT.search(request.path):
        bad["path"] = [FIELD_MESSAGE]
    for name, value in _pairs(request.args.lists()):
        if _IN_SEGMENT.search(name) or IN_TEXT.search(value):
            bad[_printable(name)] = [FIELD_MESSAGE]
    if request.mimetype in FORM_MIMETYPES:
        for name, value in _pairs(request.form.lists()):
            if _IN_SEGMENT.search(name) or IN_TEXT.search(value):
                bad[_printable(name)] = [FIELD_MESSAGE]
        for name, upload in request.files.items(multi=True):
            if _IN_SEGMENT.search(name) or _IN_SEGMENT.search(upload.filename or ""):
                bad[_printable(name)] = [FIELD_MESSAGE]
    for name, value in json_strings(document, ""):
        if IN_TEXT.search(value):
            bad[_printable(name) or "json"] = [FIELD_MESSAGE]
    if bad:
        raise _Refused(422, "invalid", "请求包含不允许的字符", bad)


def _pairs(lists: Any) -> Iterator[tuple[str, str]]:
    for name, values in lists:
        yield name, name
        for value in values:
            yield name, value


def json_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, string) for every key and string value; iterative, the depth is bounded above."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in item.items():
                field = f"{where}.{key}" if where else key
                yield field, key
                stack.append((child, field))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))


def _printable(name: str) -> str:
    """A field name fit for the error details (its own bad characters shown as escapes)."""
    return _IN_SEGMENT.sub(lambda m: f"\\u{ord(m.group(0)):04x}", name)
