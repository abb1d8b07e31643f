"""Request-scoped helpers for the web layer (api.py / views.py modules): session, principal, limits.

A write request commits once, at the web boundary: ``core.app`` commits the request's session
after a response below 400 and rolls it back otherwise. Services only flush.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
import unicodedata
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import current_app, g, has_app_context, jsonify, render_template, request
from flask import session as cookie_session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from sqlmodel import Session

from core.auth import ANONYMOUS, Principal, User, principal_for_token
from core.config import Settings
from core.db import MAX_DB_ID, Database
from core.errors import DomainError, Forbidden, Unauthorized
from core.logging import get_request_id, new_request_id

# get_remote_address reads request.remote_addr, which ProxyFix (Settings.trusted_proxies) sets to
# the client's address behind our own proxies.
limiter = Limiter(key_func=get_remote_address)
csrf = CSRFProtect()
# app.extensions key of the extra readiness checks a domain adds: {name: () -> dict with "state"}.
READINESS_CHECKS = "gaogang.readiness_checks"
T = TypeVar("T")


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
    elif cookie_session.get(SESSION_USER) is not None:
        if (
            request.method not in ("GET", "HEAD", "OPTIONS")
            and request.path.startswith("/api/")
            and current_app.config.get("WTF_CSRF_ENABLED", True)
        ):
            # API blueprints are CSRF-exempt for token clients; a cookie-authenticated write
            # (a browser) must still carry the CSRF token, or another site could trigger it.
            current_app.extensions["csrf"].protect()
        user = db_session().get(User, cookie_session[SESSION_USER])
        if user is not None and user.is_active and _session_is_current(user):
            principal = Principal.of(user)
        else:
            cookie_session.clear()
    g.principal = principal
    return principal


# Keys of the signed login cookie. The cookie alone is not enough: its epoch must equal the user's
# current session_epoch (moved by logout, password change, deactivation), and its timestamps must
# be within the idle and absolute limits of Settings.
SESSION_USER = "user_id"
SESSION_EPOCH = "epoch"
SESSION_AUTH_AT = "auth_at"
SESSION_SEEN = "seen"
# "seen" is rewritten at most this often, so not every response sets a new cookie.
SEEN_RESOLUTION_S = 60


def start_login_session(user: User) -> None:
    """Sign the browser in as ``user`` (a fresh cookie: no data of an earlier session survives)."""
    now = time.time()
    cookie_session.clear()
    cookie_session[SESSION_USER] = user.id
    cookie_session[SESSION_EPOCH] = user.session_epoch
    cookie_session[SESSION_AUTH_AT] = now
    cookie_session[SESSION_SEEN] = now


def _session_is_current(user: User) -> bool:
    s = settings()
    now = time.time()
    try:
        epoch = int(cookie_session.get(SESSION_EPOCH, -1))
        auth_at = float(cookie_session.get(SESSION_AUTH_AT, 0))
        seen = float(cookie_session.get(SESSION_SEEN, 0))
    except (TypeError, ValueError):
        return False
    if epoch != user.session_epoch:
        return False  # ended server-side: logout, password change or deactivation
    if now - seen > s.session_idle_minutes * 60 or now - auth_at > s.session_max_hours * 3600:
        return False
    if seen > now + SEEN_RESOLUTION_S or auth_at > now + SEEN_RESOLUTION_S:
        return False  # from the future: not a cookie we issued on this clock
    if now - seen >= SEEN_RESOLUTION_S:
        cookie_session[SESSION_SEEN] = now
    return True


def same_site_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (for ``?next=`` after login).

    Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so
    ``/<TAB>/evil.example`` becomes ``//evil.example``, another site. Rather than guess what each
    browser makes of such a value, any control, format or space character and any backslash
    rejects it; what is left must be an absolute path without a scheme or host."""
    if not target or len(target) > 2000:
        return None
    for ch in target:
        if ch == "\\" or ch.isspace() or unicodedata.category(ch)[0] in ("C", "Z"):
            return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


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


def require_metrics_access() -> None:
    """/metrics is for the monitoring system only: a scraper presenting METRICS_TOKEN as a bearer
    token, or a request from METRICS_ALLOWED_NETWORKS. Neither configured: nobody."""
    s = settings()
    if not s.metrics_token and not s.metrics_allowed_networks:
        raise Forbidden("未配置指标抓取凭据（METRICS_TOKEN 或 METRICS_ALLOWED_NETWORKS），不提供指标")
    if s.metrics_allowed_networks and _address_in(request.remote_addr, s.metrics_allowed_networks):
        return
    if s.metrics_token:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        presented = token.strip().encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(presented, s.metrics_token.encode()):
            return
        raise Unauthorized("指标抓取令牌缺失或不正确")
    raise Forbidden("来源地址不在允许抓取指标的网段内")


def may_read_metrics() -> bool:
    """Whether this request may read what /metrics gives (``require_metrics_access`` passes): the
    health endpoints show their details (addresses, error texts) only to such callers."""
    try:
        require_metrics_access()
    except (Forbidden, Unauthorized):
        return False
    return True


def _address_in(address: str | None, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n) for n in networks)


_cache_lock = threading.Lock()


def cached(name: str, seconds: float, compute: Callable[[], T]) -> T:
    """``compute()`` at most once per ``seconds`` for this app (and this process); the others wait
    for the one computing instead of running the same query alongside it."""
    store: dict[str, tuple[float, Any]] = current_app.extensions.setdefault("gaogang.cache", {})
    with _cache_lock:
        hit = store.get(name)
        if hit is not None and hit[0] > time.monotonic():
            value: T = hit[1]
            return value
        value = compute()
        store[name] = (time.monotonic() + seconds, value)
        return value


def wants_json() -> bool:
    path = request.path
    if path.startswith(("/api/", "/open311/", "/open-data/", "/healthz", "/readyz", "/metrics")):
        return True
    # Only an explicit preference for JSON; "*/*" (curl, scripts) gets pages like a browser does.
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


# What a flashed error may hold: the flash rides in the signed session cookie, and a browser drops a
# cookie over 4 KB without a word (the message, and the session with it, would be lost).
FLASH_DETAILS = 10
FLASH_DETAIL_CHARS = 120


def error_summary(error: DomainError) -> str:
    """``error``'s message and its first details, each cut short, for a flash message: a file of
    long unknown codes otherwise pushed the cookie past what a browser keeps."""
    items = list(error.details.items())
    parts = []
    for key, value in items[:FLASH_DETAILS]:
        text = "，".join(map(str, value)) if isinstance(value, list) else str(value)
        text = text if len(text) <= FLASH_DETAIL_CHARS else text[:FLASH_DETAIL_CHARS] + "…"
        parts.append(f"{str(key)[:40]}：{text}")
    more = f"；等共 {len(items)} 处" if len(items) > FLASH_DETAILS else ""
    return f"{error.message}。" + "；".join(parts) + more if parts else error.message


def form_id(name: str) -> int | None:
    """A row id posted in a form field: a positive integer no row id exceeds (MAX_DB_ID: beyond it the
    database refuses the comparison, a 500, rather than finding nothing), else None."""
    return row_id((request.form.get(name) or "").strip())


def row_id(raw: str) -> int | None:
    """``raw`` as a row id: ASCII digits ("²" passes isdigit() and int() raises) of a positive integer
    no row id exceeds (MAX_DB_ID), else None."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_DB_ID else None


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
