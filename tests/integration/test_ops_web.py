"""Operations of the web layer: request ids, JSON access logs, /readyz against real dependencies."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

from core.logging import configure_logging
from tests.conftest import make_settings
from tests.factories.sync import RegistryProcess, free_port
from webapp import create_app


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    yield stream
    configure_logging("web")


# The readiness details (error texts, addresses) are the monitoring system's: these tests call from it.
MONITOR = "monitor-token-0123456789"
AS_MONITOR = {"Authorization": f"Bearer {MONITOR}"}


def _app(db, tmp_path, **overrides):
    overrides.setdefault("metrics_token", MONITOR)
    flask_app = create_app(make_settings(tmp_path, db.url, **overrides), database=db)
    flask_app.config["WTF_CSRF_ENABLED"] = False
    return flask_app


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_well_formed_incoming_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "client-trace-0001"})
    assert response.headers["X-Request-ID"] == "client-trace-0001"


@pytest.mark.parametrize("bad", ["short", "has space in it 123", "x" * 200, "evil\u2028newline-abc"])
def test_malformed_request_id_is_replaced_by_a_new_one(client, bad):
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    rid = response.headers["X-Request-ID"]
    assert rid != bad
    assert len(rid) == 32
    int(rid, 16)


def test_each_request_without_an_id_gets_a_distinct_one(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first != second


def test_every_log_line_of_a_request_carries_its_id_and_an_access_line_is_written(app, log_stream):
    configure_logging("web", stream=log_stream)

    @app.get("/_test/log-something")
    def _log_something():
        logging.getLogger("gaogang.test").warning("inside the request", extra={"licence_id": 42})
        return {"ok": True}

    response = app.test_client().get("/_test/log-something", headers={"X-Request-ID": "trace-abcdef-1"})
    assert response.status_code == 200
    lines = _lines(log_stream)
    inside = next(line for line in lines if line["message"] == "inside the request")
    assert inside["request_id"] == "trace-abcdef-1"
    assert inside["licence_id"] == 42
    assert inside["level"] == "WARNING"
    assert inside["logger"] == "gaogang.test"
    assert inside["service"] == "web"
    assert inside["ts"].endswith("Z")
    access = next(line for line in lines if line["logger"] == "gaogang.access")
    assert access["request_id"] == "trace-abcdef-1"
    assert access["method"] == "GET"
    assert access["path"] == "/_test/log-something"
    assert access["status"] == 200
    assert access["duration_ms"] >= 0


def test_errors_are_logged_as_json_with_the_request_id(app, log_stream):
    configure_logging("web", stream=log_stream)

    @app.get("/_test/boom")
    def _boom():
        raise RuntimeError("kaputt")

    response = app.test_client().get("/_test/boom", headers={"X-Request-ID": "trace-boom-0001"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "trace-boom-0001"
    error = next(line for line in _lines(log_stream) if line["level"] == "ERROR")
    assert error["request_id"] == "trace-boom-0001"
    assert "kaputt" in error["exc_info"]
    access = next(line for line in _lines(log_stream) if line["logger"] == "gaogang.access")
    assert access["status"] == 500


def test_request_id_is_available_to_code_handling_the_request(app):
    from core.web import request_id

    @app.get("/_test/rid")
    def _rid():
        return {"rid": request_id()}

    body = app.test_client().get("/_test/rid", headers={"X-Request-ID": "trace-rid-00001"}).get_json()
    assert body["rid"] == "trace-rid-00001"


def test_healthz_stays_cheap_and_does_not_call_the_registry(db, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    client = _app(db, tmp_path, city_registry_url=closed).test_client()
    assert client.get("/healthz").status_code == 200


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    process = RegistryProcess(tmp_path_factory.mktemp("readyz")).start()
    yield process
    process.stop()


def test_readyz_is_200_when_database_broker_and_registry_answer(db, tmp_path, registry):
    client = _app(db, tmp_path, city_registry_url=registry.url).test_client()
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {name: c["state"] for name, c in body["checks"].items()} == {
        "database": "ok", "broker": "ok", "rate_limiter": "ok", "registry": "ok", "licence_sync": "ok"}


def test_readyz_is_degraded_naming_the_registry_when_it_does_not_answer(db, tmp_path):
    # Still serving: changes wait in the outbox until the registry answers (core.app.readyz).
    closed = f"http://127.0.0.1:{free_port()}"
    response = _app(db, tmp_path, city_registry_url=closed).test_client().get("/readyz", headers=AS_MONITOR)
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["failing"] == body["degraded"] == ["registry"]
    assert body["checks"]["registry"]["state"] == "error"
    assert "ConnectError" in body["checks"]["registry"]["error"]
    assert body["checks"]["database"]["state"] == "ok"


def test_readyz_is_degraded_naming_the_broker_when_redis_is_down(db, tmp_path, registry):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    client = _app(db, tmp_path, city_registry_url=registry.url, redis_url=dead_redis).test_client()
    response = client.get("/readyz", headers=AS_MONITOR)
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["failing"] == ["broker"]  # rate limits are off in these settings
    assert body["checks"]["broker"]["kind"] == "redis"
    assert "ConnectionError" in body["checks"]["broker"]["error"]


def test_readyz_checks_the_real_redis_when_configured(db, tmp_path, registry):
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = _app(db, tmp_path, city_registry_url=registry.url, redis_url=redis_url).test_client()
    response = client.get("/readyz", headers=AS_MONITOR)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["broker"]["kind"] == "redis"


def test_readyz_is_degraded_naming_the_broker_when_its_folder_is_not_writable(db, tmp_path, registry):
    broker = tmp_path / "broker"
    broker.mkdir()
    (broker / "queue").write_text("a file where the queue folder should be")
    client = _app(db, tmp_path, city_registry_url=registry.url).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "degraded"
    assert response.get_json()["failing"] == ["broker"]


def test_readyz_is_503_unavailable_when_the_database_is_down(tmp_path, registry):
    from core.db import Database

    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(make_settings(tmp_path, dead, city_registry_url=registry.url), database=Database(dead))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert "database" in response.get_json()["failing"]


def test_request_id_outside_a_request_is_the_bound_one_for_workers_and_cli():
    from core.logging import bind_request_id, get_request_id
    from core.web import request_id

    with bind_request_id("task-from-web-0001") as rid:
        assert rid == "task-from-web-0001"
        assert request_id() == "task-from-web-0001"
    assert get_request_id() is None
    with bind_request_id("bad id") as rid:
        assert rid != "bad id"
        assert len(rid) == 32


def test_json_log_lines_outside_requests_have_a_null_request_id(log_stream):
    configure_logging("worker", stream=log_stream)
    logging.getLogger("gaogang.test").info("no request here")
    (line,) = [x for x in _lines(log_stream) if x["message"] == "no request here"]
    assert line["request_id"] is None
    assert line["service"] == "worker"


def test_access_log_keeps_only_the_head_of_a_verification_token(client, log_stream):
    configure_logging("web", stream=log_stream)
    token = "A" * 120
    client.get(f"/verify/{token}")
    access = next(line for line in _lines(log_stream) if line["logger"] == "gaogang.access")
    assert token not in access["path"]
    assert access["path"].startswith("/verify/AAAA")


def test_health_details_are_the_monitoring_systems_others_get_the_verdict_only(db, tmp_path):
    """The endpoints are public (balancers call them): addresses and error texts are not."""
    closed = f"http://127.0.0.1:{free_port()}"
    client = _app(db, tmp_path, city_registry_url=closed).test_client()
    for path in ("/readyz", "/healthz"):
        public, monitor = client.get(path), client.get(path, headers=AS_MONITOR)
        assert public.status_code == monitor.status_code == 200
        text = public.get_data(as_text=True)
        for secret in ("127.0.0.1", "ConnectError", "postgresql", "url", "error\":"):
            assert secret not in text, (path, secret, text)
        assert public.get_json()["status"] == monitor.get_json()["status"] != "unavailable"
    public = client.get("/readyz").get_json()
    assert public["failing"] == ["registry"]
    assert public["checks"]["registry"] == {"state": "error"}
    detailed = client.get("/readyz", headers=AS_MONITOR).get_json()
    assert "ConnectError" in detailed["checks"]["registry"]["error"]
