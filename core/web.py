"""Request-scoped helpers for the web layer (api.py / views.py modules): session, principal, limits.

A write request commits once, at the web boundary: ``core.app`` commits the request's session
after a response below 400 and rolls it back otherwise. Services only flush.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, has_app_context, jsonify, render_template, request
from flask import session as cookie_session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from sqlmodel import Session

from core.auth import ANONYMOUS, Principal, User, principal_for_token
from core.config import Settings
from core.db import Database
from core.errors import Forbidden, Unauthorized
from core.logging import get_request_id, new_request_id

limiter = Limiter(key_func=get_remote_address)
csrf = CSRFProtect()


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one error shape of the platform: {"code", "message", "details"}."""
    return {"code": code, "message": message, "details": details if details is not None else {}}


def error_response(status: int, code: str, message: str, details: Any = None) -> Any:
    """That shape as JSON for API clients, or the error page for browsers."""
    if wants_json():
        response = jsonify(error_body(code, message, details))
        response.status_code = status
        return response
    return render_template("error.html", status=status, message=message, details=details), status


def request_id() -> str:
    """The id of the current request (the caller's X-Request-ID if well-formed, else a new one).

    Outside a request (CLI, worker) it is the id bound by ``core.logging.bind_request_id``, or a
    fresh one, so callers can always store it.
    """
    if has_app_context() and "request_id" in g:
        rid: str = g.request_id
        return rid
    return get_request_id() or new_request_id()


def database() -> Database:
    db: Database = current_app.extensions["gaogang.db"]
    return db


def settings() -> Settings:
    s: Settings = current_app.extensions["gaogang.settings"]
    return s


def db_session() -> Session:
    if "db_session" not in g:
        g.db_session = database().session()
    s: Session = g.db_session
    return s


def current_principal() -> Principal:
    """Bearer token first (machine clients), then the login cookie (pages), else anonymous."""
    if "principal" in g:
        p: Principal = g.principal
        return p
    principal = ANONYMOUS
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Authorization 头应为 Bearer 令牌")
        found = principal_for_token(db_session(), token.strip())
        if found is None:
            raise Unauthorized("API 令牌无效或已吊销")
        principal = found
    elif cookie_session.get("user_id") is not None:
        if (
            request.method not in ("GET", "HEAD", "OPTIONS")
            and request.path.startswith("/api/")
            and current_app.config.get("WTF_CSRF_ENABLED", True)
        ):
            # API blueprints are CSRF-exempt for token clients; a cookie-authenticated write
            # (a browser) must still carry the CSRF token, or another site could trigger it.
            current_app.extensions["csrf"].protect()
        user = db_session().get(User, cookie_session["user_id"])
        if user is not None and user.is_active:
            principal = Principal.of(user)
        else:
            cookie_session.clear()
    g.principal = principal
    return principal


def require_login() -> Principal:
    principal = current_principal()
    if not principal.is_authenticated:
        raise Unauthorized("请先登录")
    return principal


def require_admin() -> Principal:
    principal = require_login()
    if not principal.is_admin:
        raise Forbidden("仅区级管理员可执行此操作")
    return principal


def wants_json() -> bool:
    path = request.path
    if path.startswith(("/api/", "/open311/", "/healthz", "/readyz", "/metrics")):
        return True
    # Only an explicit preference for JSON; "*/*" (curl, scripts) gets pages like a browser does.
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def page_args(default_limit: int = 20, max_limit: int = 100) -> tuple[int, int]:
    """page and limit from the query string, clamped (pages never 500 on junk)."""

    def _int(name: str, default: int) -> int:
        try:
            return int(request.args.get(name, default))
        except (TypeError, ValueError):
            return default

    page = min(max(_int("page", 1), 1), 10_000)
    limit = min(max(_int("limit", default_limit), 1), max_limit)
    return page, limit


def form_dict() -> dict[str, Any]:
    return {k: v for k, v in request.form.items() if k != "csrf_token"}


JSON_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def refuse_non_json_body() -> Any:
    """before_request: a write to ``/api/`` whose body is not JSON is 415, not silently ignored.

    webargs reads a form-encoded body as "no JSON" and an all-optional PATCH would then succeed
    without changing anything. A write without a body (``POST .../submit``) stays allowed.
    """
    if request.method not in JSON_WRITE_METHODS or not request.path.startswith("/api/"):
        return None
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if not (request.content_length or chunked) or request.is_json:
        return None
    given = request.mimetype or "（未声明）"
    return error_response(415, "unsupported_media_type",
                          "请求体应为 JSON，请使用 Content-Type: application/json",
                          {"Content-Type": [f"不支持的请求体类型：{given}"]})


MOVED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _moved_to(new_prefix: str, rest: str = "") -> Any:
    from flask import redirect

    target = new_prefix + (f"/{rest}" if rest else "")
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    response = redirect(target, 308)  # 308 keeps the method and the body
    response.headers["Deprecation"] = "true"
    response.headers["Link"] = f'<{target}>; rel="successor-version"'
    return response


def add_moved_prefix(app: Any, old_prefix: str, new_prefix: str) -> None:
    """Answer every request under ``old_prefix`` with 308 to the same path under ``new_prefix``.

    Public URLs are a contract: a renamed prefix keeps redirecting for one release. The redirect
    writes nothing, so it is CSRF-exempt; the target checks CSRF and permissions itself.
    """
    endpoint = "moved" + old_prefix.replace("/", "_").replace("-", "_")

    def moved(rest: str = "") -> Any:
        return _moved_to(new_prefix, rest)

    moved.__name__ = endpoint
    app.add_url_rule(old_prefix, endpoint, moved, methods=MOVED_METHODS)
    app.add_url_rule(f"{old_prefix}/<path:rest>", f"{endpoint}_rest", moved, methods=MOVED_METHODS)
    csrf.exempt(moved)
