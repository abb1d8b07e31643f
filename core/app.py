"""The Flask application factory: settings, database, API, pages, errors, security headers."""

from __future__ import annotations

import importlib
import logging
import tempfile
import time
from typing import Any

import httpx
import sqlalchemy as sa
from flask import Flask, g, jsonify, render_template, request
from flask_smorest import Api
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from core import web
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

log = logging.getLogger(__name__)
access_log = logging.getLogger("gaogang.access")

# Each module exposes register(app, api); the list is the map of the web layer.
WEB_MODULES = [
    "core.auth_views",
    "core.cli",
    "catalog.api",
    "catalog.views",
    "catalog.cli",
    "catalog.search_api",
    "catalog.portal_views",
    "licenses.api",
    "licenses.views",
    "licenses.cli",
    "licenses.sync_api",
    "reports.views",
    "reports.cpsv_views",
    "demo.cli",
    "core.ops_cli",
]

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI ships inline bootstrap code; only its page gets the looser policy.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'"
)

csrf = CSRFProtect()


def _error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details if details is not None else {}}


def error_response(status: int, code: str, message: str, details: Any = None) -> Any:
    if web.wants_json():
        response = jsonify(_error_body(code, message, details))
        response.status_code = status
        return response
    return render_template("error.html", status=status, message=message, details=details), status


class GovApi(Api):  # type: ignore[misc]
    """flask-smorest Api whose HTTP errors use the project's {"code", "message", "details"} shape."""

    ERROR_SCHEMA = ErrorSchema  # what the OpenAPI document says every error response looks like

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
        message = fixed.get(status) or error.description or error.name
        if status == 400 and data.get("messages") is None and error.description:
            message = f"请求格式错误：{error.description}"
        response = error_response(status, code, message, details)
        valid_methods = getattr(error, "valid_methods", None)
        if status == 405 and valid_methods:
            if isinstance(response, tuple):
                return response[0], status, {"Allow": ", ".join(valid_methods)}
            response.headers["Allow"] = ", ".join(valid_methods)
        return response


class IdConverter(IntegerConverter):
    """The ``int`` converter of every route: ids are 1..MAX_DB_ID, so a larger one is a 404 at
    routing (and the OpenAPI document says so) instead of a per-view check or a database overflow."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_DB_ID)
        super().__init__(map, *args, **kwargs)


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging("web")
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.url_map.converters["int"] = IdConverter  # before any route is registered
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        SESSION_COOKIE_NAME="gg_session",
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_ENABLED=True,
        RATELIMIT_ENABLED=settings.ratelimit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_uri,
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
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["gaogang.settings"] = settings
    app.extensions["gaogang.db"] = database or Database(settings.database_url)

    api = GovApi(app)
    csrf.init_app(app)
    web.limiter.init_app(app)

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        g.request_id = incoming if valid_request_id(incoming) else new_request_id()
        g.request_id_token = set_request_id(g.request_id)
        g.request_started = time.perf_counter()

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
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", DOCS_CSP if request.path.startswith("/api/docs") else CSP
        )
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
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "服务器内部错误，请稍后再试")

    @app.get("/healthz")
    def healthz() -> Any:
        db: Database = app.extensions["gaogang.db"]
        try:
            with db.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            db_state = "ok"
        except sa.exc.SQLAlchemyError as exc:
            db_state = f"error: {exc.__class__.__name__}"
        broker = settings.redis_url or f"filesystem://{settings.broker_folder}"
        body = {
            "status": "ok" if db_state == "ok" else "degraded",
            "database": {"dialect": db.dialect, "url": db.describe(), "state": db_state},
            "broker": {"kind": "redis" if settings.redis_url else "filesystem", "url": _hide(broker)},
        }
        return jsonify(body), 200 if db_state == "ok" else 503

    @app.get("/readyz")
    def readyz() -> Any:
        """Readiness: can this instance do its work? Database, broker and city registry."""
        checks = {
            "database": _check_database(app.extensions["gaogang.db"]),
            "broker": _check_broker(settings),
            "registry": _check_registry(settings),
        }
        # Checks the domains add (core imports none of them): a callable returning {"state": "ok"} or
        # {"state": "degraded", "reason": ...}; degraded is still ready (200) but says why.
        for name, extra in app.extensions.get(READINESS_CHECKS, {}).items():
            checks[name] = _timed(extra)
        failing = [name for name, check in checks.items() if check["state"] not in ("ok", "degraded")]
        degraded = [name for name, check in checks.items() if check["state"] == "degraded"]
        status = "unavailable" if failing else "degraded" if degraded else "ok"
        body = {"status": status, "failing": failing, "degraded": degraded, "checks": checks}
        if failing:
            log.warning("readiness check failed: %s", ", ".join(failing), extra={"failing": failing})
        return jsonify(body), 503 if failing else 200

    for name in WEB_MODULES:
        importlib.import_module(name).register(app, api)
    return app


READY_TIMEOUT_S = 2.0
# app.extensions key: {name: callable} of readiness checks that the wiring of a domain adds.
READINESS_CHECKS = "gaogang.readiness_checks"


def _loggable_path(path: str) -> str:
    """The path for the access log: a verification token is a bearer credential, keep only its head."""
    if path.startswith("/verify/") and len(path) > 28:
        return path[:28] + "…"
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


def _check_registry(settings: Settings) -> dict[str, Any]:
    url = f"{settings.city_registry_url}/healthz"

    def check() -> dict[str, Any]:
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
