"""The application's infrastructure (settings, database, API, errors, security headers, health);
the domain wiring lives in ``webapp``."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from datetime import timedelta
from typing import Any, ClassVar

import sqlalchemy as sa
from flask import Flask, g, jsonify, request
from flask import session as cookie_session
from flask.sessions import SecureCookieSessionInterface
from flask_smorest import Api
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Rule

from core import input_guard, web, workdays
from core.config import Settings
from core.db import MAX_DB_ID, Database
from core.errors import DomainError
from core.logging import (
    REQUEST_ID_HEADER,
    configure_logging,
    new_request_id,
    reset_request_id,
    set_request_id,
    valid_request_id,
)
from core.schemas import ErrorSchema
from core.web import READINESS_CHECKS, csrf, error_response, may_read_metrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("gaogang.access")

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
class GovApi(Api):  # type: ignore[misc]  # flask-smorest ships no types, so Api is Any
    """flask-smorest Api whose HTTP errors use the project's {"code", "message", "details"} shape."""

    ERROR_SCHEMA = ErrorSchema  # what the OpenAPI document says every error response looks like

    # Documenting a blueprint (flask-smorest deep-copies each view's doc and resolves its schemas) was
    # two thirds of create_app's time, paid by every process at start and by every test's app, while
    # the document is read only by /api/openapi.json, /api/docs, `flask openapi` and contract tests.
    # So blueprints are registered as routes at once and documented, in registration order, the first
    # time anything reads ``spec``; the document is the same, built once per app.
    def __init__(self, app: Flask | None = None, **kwargs: Any) -> None:
        self._undocumented: list[tuple[Any, str, Any]] = []
        self._documenting = threading.Lock()
        self._documenting_thread: int | None = None
        self._spec: Any = None
        super().__init__(app, **kwargs)

    @property
    def spec(self) -> Any:
        # The thread that is documenting reads the document as it stands (flask-smorest's callbacks
        # read ``api.spec`` mid-blueprint); any other thread waits for the whole of it.
        if self._undocumented and self._documenting_thread != threading.get_ident():
            self._document_pending()
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self._spec = value

    def _document_pending(self) -> None:
        with self._documenting:
            self._documenting_thread = threading.get_ident()
            try:
                while self._undocumented:
                    blp, name, parameters = self._undocumented.pop(0)
                    blp.register_views_in_doc(self, self._app, self._spec, name=name, parameters=parameters)
                    self._spec.tag({"name": name, "description": blp.description})
            finally:
                self._documenting_thread = None

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    def handle_http_exception(self, error: HTTPException) -> Any:
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        messages = data.get("messages")
        details: Any = {}
        if messages:
            # webargs nests by location ("json", "query"); flatten to field -> messages.
            details = {}
            for value in messages.values():
                if isinstance(value, dict):
                    details.update(value)
                else:
                    details["_schema"] = value
        code = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 409: "conflict", 412: "precondition_failed",
                413: "too_large", 415: "unsupported_media_type", 422: "invalid",
                429: "rate_limited"}.get(status, "error")
        fixed = {422: "请求参数校验失败", 400: "请求格式错误"}
        # werkzeug's own descriptions ("The requested URL was not found on the server...") and
        # flask-limiter's ("120 per 1 minute") are English; what a citizen reads is Chinese. A
        # description a view gave on purpose (abort(404, "...")) is kept.
        generic = error.description in (None, "", type(error).description) or status == 429
        description = HTTP_MESSAGES.get(status, "请求无法处理") if generic else error.description
        message = fixed.get(status) or description or error.name
        if status == 400 and data.get("messages") is None and description and not generic:
            message = f"请求格式错误：{description}"
        response = error_response(status, code, message, details)
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            if isinstance(response, tuple):
                return response[0], status, {"Allow": ", ".join(valid_methods)}
            response.headers["Allow"] = ", ".join(valid_methods)
        return response


# The Chinese message of each HTTP error the framework raises by itself (routing, limits, sizes).
HTTP_MESSAGES = {
    400: "请求格式错误",
    401: "请先登录",
    403: "没有权限访问",
    404: "页面或资源不存在，请检查网址",
    405: "不支持该请求方法",
    406: "无法提供所请求的内容格式",
    408: "请求超时，请重试",
    409: "请求与当前状态冲突，请刷新后重试",
    410: "该资源已不再提供",
    411: "请求缺少 Content-Length",
    412: "前置条件不满足，请刷新后重试",
    413: "请求内容过大",
    414: "请求地址过长",
    415: "不支持的请求体类型",
    416: "请求的范围无效",
    417: "无法满足 Expect 请求头",
    428: "请求缺少前置条件",
    429: "请求过于频繁，请稍后再试",
    431: "请求头过大",
    500: "服务器内部错误，请稍后再试",
    501: "不支持该请求方法",
    503: "服务暂时不可用，请稍后再试",
}


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, unchanged, except that the signing serializer is built once per
    key instead of on every request: Flask builds it before it even looks for a cookie, and that was
    about 0.1 ms of every request (docs/benchmarks.md). The serializer holds no per-request state."""

    def __init__(self) -> None:
        self._serializer: tuple[tuple[Any, ...], Any] | None = None

    def get_signing_serializer(self, app: Flask) -> Any:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        built = self._serializer
        if built is None or built[0] != keys:
            # A new SECRET_KEY or fallback list (tests change them) gets a new serializer.
            built = (keys, super().get_signing_serializer(app))
            self._serializer = built
        return built[1]


class BuilderCachingRule(Rule):
    """Werkzeug's Rule, whose URL builders are compiled once per process instead of once per app.

    Binding a rule compiles two builder functions from a generated syntax tree; the platform has ~180
    rules, so that was most of what create_app still cost after the OpenAPI document became lazy, and
    the tests build hundreds of apps. A builder is a pure function of the rule's trace, the
    defaults it resolves to constants and whether unknown arguments are appended (everything else it
    reads from the bound rule at call time), so equal inputs share one compiled function. Should a
    later werkzeug change these internals, the rule compiles as before."""

    _builders: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def _compile_builder(self, append_unknown: bool = True) -> Any:
        try:
            defaults = self.defaults or {}
            constants = tuple(
                (name, self._converters[name].to_url(value))
                for name, value in defaults.items() if name in self._converters
            )
            key = (self.rule, tuple(self._trace), tuple(str(k) for k in defaults), constants, append_unknown)
        except (AttributeError, TypeError):
            return super()._compile_builder(append_unknown)
        built = self._builders.get(key)
        if built is None:
            built = self._builders[key] = super()._compile_builder(append_unknown)
        return built


class IdConverter(IntegerConverter):
    """The ``int`` converter of every route: ids are 1..MAX_DB_ID, so a larger one is a 404 at
    routing (and the OpenAPI document says so) instead of a per-view check or a database overflow."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_DB_ID)
        super().__init__(map, *args, **kwargs)


def build_app(settings: Settings | None = None, database: Database | None = None) -> tuple[Flask, Api]:
    """The application's infrastructure: settings, database, API object, CSRF, limits, request ids,
    the commit at the web boundary, security headers, errors and health checks.

    Domain packages are wired on top of it by ``webapp.create_app`` (outside ``core``, so that
    core never imports a domain and the linter sees every edge)."""
    settings = settings or Settings.from_env()
    settings.require_city_registry_key()  # fail at start, naming the variable, not at the first sync
    workdays.notices()  # likewise a malformed holiday notices file: its line, at start
    configure_logging("web")
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.url_rule_class = BuilderCachingRule
    if settings.trusted_proxies:
        # Only as many X-Forwarded-* hops as there are proxies we run: more would let any client
        # choose its own address (and its own rate-limit bucket).
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]  # the documented way to wrap
    app.url_map.converters["int"] = IdConverter  # before any route is registered
    app.session_interface = SessionCookies()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        SESSION_COOKIE_NAME="gg_session",
        # The signature's own age limit; the idle limit and server-side ends are core.web's.
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_max_hours),
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_ENABLED=True,
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
        # Redis down: count in this process's memory instead (limits still hold, per process),
        # and go back to Redis when it answers again. Never fail open, never answer 500.
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_STORAGE_OPTIONS=(
            {"socket_connect_timeout": LIMITER_REDIS_TIMEOUT_S, "socket_timeout": LIMITER_REDIS_TIMEOUT_S}
            if settings.redis_url else {}
        ),
        RATELIMIT_HEADERS_ENABLED=True,
        JSON_AS_ASCII=False,
        API_TITLE="高港区政务服务事项与电子证照平台 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/static/swagger-ui/",
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}
            },
        },
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # DefaultJSONProvider's; the base type lacks it
    app.extensions["gaogang.settings"] = settings
    app.extensions["gaogang.db"] = database or Database(settings.database_url)

    api = GovApi(app)
    csrf.init_app(app)
    web.limiter.init_app(app)
    # The limiter is one object for the process (views decorate with it at import); a new app
    # starts on its own storage, not in the fallback an earlier app's dead Redis left it in.
    web.limiter._storage_dead = False  # no public reset in Flask-Limiter 4.1

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        g.request_id = incoming if valid_request_id(incoming) else new_request_id()
        g.request_id_token = set_request_id(g.request_id)
        g.request_started = time.perf_counter()

    input_guard.init_app(app, api)  # after the request id, before any view or argument parsing
    app.before_request(web.refuse_non_json_body)

    @app.after_request
    def _finish(response: Any) -> Any:
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
            started = g.get("request_started")
            path = _loggable_path(request.path)
            access_log.info(
                "%s %s %s", request.method, path, response.status_code,
                extra={
                    "method": request.method,
                    "path": path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started else None,
                    "remote_addr": request.remote_addr,
                },
            )
        session = g.pop("db_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        principal = g.get("principal")
        if principal is not None and principal.is_authenticated:
            # What a signed-in user is shown (holders' data in full, drafts, internal figures) is
            # theirs alone: no shared or browser cache keeps it after they leave the page.
            response.headers.setdefault("Cache-Control", "private, no-store")
        if "Set-Cookie" in response.headers or cookie_session.modified:
            # A response that sets a cookie (the session with its CSRF token, the place picker's
            # choice) is one visitor's: a shared cache must not hand it, cookie included, to the next.
            response.headers.setdefault("Cache-Control", "private, no-store")
        location = response.headers.get("Location")
        if location and location.startswith(request.host_url):
            # Werkzeug's own redirects (/bundles → /bundles/) are absolute, built from the Host
            # header the client chose: keep only the path, so that no cache stores a redirect to
            # another site under our URL.
            response.headers["Location"] = "/" + location[len(request.host_url):]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # One policy for every page, /api/docs included (vendored Swagger UI, core/templates/swagger_ui.html).
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    @app.teardown_request
    def _cleanup(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()
        token = g.pop("request_id_token", None)
        if token is not None:
            reset_request_id(token)

    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError) -> Any:
        return error_response(error.status, error.code, error.message, error.details)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError) -> Any:
        return error_response(400, "csrf_failed", "表单已过期或来源不明，请刷新页面后重试")

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        log.exception("unhandled error on %s %s", request.method, _loggable_path(request.path))
        return error_response(500, "internal_error", "服务器内部错误，请稍后再试")

    @app.get("/healthz")
    def healthz() -> Any:
        """Liveness: 503 only when the database is unreachable (restarting may help); Redis down
        is "degraded" with 200: requests are still served (limits in memory, outbox kept)."""
        db: Database = app.extensions["gaogang.db"]
        try:
            with db.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            db_state = "ok"
        except sa.exc.SQLAlchemyError as exc:
            db_state = f"error: {exc.__class__.__name__}"
        broker = settings.redis_url or f"filesystem://{settings.broker_folder}"
        body: dict[str, Any] = {
            "database": {"dialect": db.dialect, "url": db.describe(), "state": db_state},
            "broker": {"kind": "redis" if settings.redis_url else "filesystem", "url": _hide(broker)},
        }
        degraded = []
        if db_state != "ok":
            degraded.append("database")
        if settings.redis_url:
            body["redis"] = _check_redis(settings.redis_url, HEALTH_REDIS_TIMEOUT_S)
            if body["redis"]["state"] != "ok":
                degraded.append("redis")
        body = {"status": "degraded" if degraded else "ok", "degraded": degraded, **body}
        return jsonify(_for_caller(body)), 503 if db_state != "ok" else 200

    @app.get("/readyz")
    def readyz() -> Any:
        """Readiness: can this instance do its work? Without the database it cannot (503,
        "unavailable"); without the broker, the rate limiter's Redis or the city registry it can,
        in a reduced way (200, "degraded", naming them): changes wait in the outbox and limits
        are counted in memory. Taking every instance out of the balancer would be worse."""
        checks = {
            "database": _check_database(app.extensions["gaogang.db"]),
            "broker": _check_broker(settings),
            "rate_limiter": _check_rate_limiter(settings),
            "registry": _check_registry(settings),
        }
        # Checks the domains add (core imports none of them): a callable returning {"state": "ok"} or
        # {"state": "degraded", "reason": ...}; degraded is still ready (200) but says why.
        for name, extra in app.extensions.get(READINESS_CHECKS, {}).items():
            checks[name] = _timed(extra)
        failing = [name for name, check in checks.items() if check["state"] not in ("ok", "degraded")]
        essential = [name for name in failing if name in ESSENTIAL]
        # A non-essential dependency that fails only degrades this instance (still ready, 200).
        degraded = [name for name, check in checks.items() if check["state"] == "degraded" or
                    (name in failing and name not in ESSENTIAL)]
        status = "unavailable" if essential else "degraded" if degraded else "ok"
        body = {"status": status, "failing": failing, "degraded": degraded, "checks": checks}
        if failing:
            log.warning("readiness check failed: %s", ", ".join(failing), extra={"failing": failing})
        return jsonify(_for_caller(body)), 503 if essential else 200

    return app, api


READY_TIMEOUT_S = 2.0
HEALTH_REDIS_TIMEOUT_S = 0.5
LIMITER_REDIS_TIMEOUT_S = 0.5
# Without these an instance cannot serve; any other failing dependency only degrades it.
ESSENTIAL = frozenset({"database"})


def _for_caller(body: dict[str, Any]) -> dict[str, Any]:
    """A health answer as this caller may see it. The monitoring system (core.web.may_read_metrics)
    gets every detail; anyone else the verdict and each dependency's state only: the endpoints are
    public (load balancers call them), and the database's address, the broker's folder, the
    registry's URL and the errors' texts are a map of the installation for an attacker."""
    if may_read_metrics():
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == "checks":
            out[key] = {name: {"state": check.get("state")} for name, check in value.items()}
        elif isinstance(value, dict):
            if "state" in value:
                out[key] = {"state": value["state"]}
        else:
            out[key] = value
    return out


# Paths whose last segment is a verification token: the QR page, the API's check and its old spelling.
TOKEN_PATHS = ("/verify/", "/api/v1/licences/verify/", "/api/v1/licenses/verify/")


def _loggable_path(path: str) -> str:
    """The path for the access log: a verification token is a bearer credential, keep only its head
    (on the API's path too, which logged the whole token)."""
    for prefix in TOKEN_PATHS:
        if path.startswith(prefix) and len(path) > len(prefix) + 20:
            return path[: len(prefix) + 20] + "…"
    return path


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result: dict[str, Any] = {"state": "ok", **(check() or {})}
    except Exception as exc:  # any failure of a dependency means "not ready", never a 500
        result = {"state": "error", "error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _check_database(db: Database) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"dialect": db.dialect}

    return _timed(check)


def _check_broker(settings: Settings) -> dict[str, Any]:
    if settings.redis_url:
        def check() -> dict[str, Any]:
            import redis

            client = redis.Redis.from_url(
                settings.redis_url or "",
                socket_timeout=READY_TIMEOUT_S,
                socket_connect_timeout=READY_TIMEOUT_S,
            )
            try:
                client.ping()
            finally:
                client.close()
            return {"kind": "redis", "url": _hide(settings.redis_url or "")}
    else:
        def check() -> dict[str, Any]:
            # The folder the workers read messages from (see celery_app).
            folder = settings.broker_folder / "queue"
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".readyz-", delete=True) as probe:
                probe.write(b"ok")
                probe.flush()
            return {"kind": "filesystem", "folder": str(folder)}

    result = _timed(check)
    result.setdefault("kind", "redis" if settings.redis_url else "filesystem")
    return result


def _check_redis(url: str, timeout: float) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
        return {"url": _hide(url)}

    result = _timed(check)
    result.setdefault("url", _hide(url))
    return result


def _check_rate_limiter(settings: Settings) -> dict[str, Any]:
    """The limiter's storage (Redis when configured). While it is down, limits are counted per
    process in memory (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED)."""
    if not settings.ratelimit_enabled:
        return {"state": "ok", "storage": "disabled"}
    uri = settings.ratelimit_storage_uri
    if not uri.startswith(("redis://", "rediss://")):
        return {"state": "ok", "storage": "memory"}
    result = _check_redis(uri, READY_TIMEOUT_S)
    result["storage"] = "redis"
    if result["state"] != "ok":
        result["fallback"] = "memory"
    return result


def _check_registry(settings: Settings) -> dict[str, Any]:
    url = f"{settings.city_registry_url}/healthz"

    def check() -> dict[str, Any]:
        # Imported on the first readiness check, not with the app: httpx (with the CLI extras it pulls
        # in) costs every process that loads the app a noticeable part of a second.
        import httpx

        response = httpx.get(url, timeout=READY_TIMEOUT_S)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return {"url": url}

    result = _timed(check)
    result.setdefault("url", url)
    return result


def _hide(url: str) -> str:
    if "://" in url and "@" in url:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    return url
