"""Redis down: the rate limiter falls back to per-process memory (limits still hold, nothing
answers 500) and /healthz and /readyz say "degraded", naming Redis.

Two ways Redis goes away: a URL pointing at a closed port from the start, and a real redis-server
of the test's own that is stopped in the middle (and started again)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from core.auth import Role
from tests.conftest import make_settings
from tests.factories.catalog import make_user
from tests.factories.sync import free_port
from webapp import create_app

LOGIN_LIMIT = 20  # core.auth_views: POST /login, 20 per minute and client


def _client(db: Any, tmp_path: Path, redis_url: str) -> Any:
    settings = make_settings(tmp_path, db.url, ratelimit_enabled=True, redis_url=redis_url)
    app = create_app(settings, database=db)
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def _everyday_requests(client: Any, token: str) -> dict[str, int]:
    auth = {"Authorization": f"Bearer {token}"}
    return {
        "POST /login": client.post("/login", data={"username": "nobody", "password": "x" * 10}).status_code,
        "GET /api/v1/items": client.get("/api/v1/items", headers=auth).status_code,
        "POST /api/v1/items": client.post(
            "/api/v1/items", json={"code": "000199999077", "name": "降级测试事项", "task_type": "01"},
            headers=auth,
        ).status_code,
        "GET /search": client.get("/search?q=社保").status_code,
        "GET /api/v1/search": client.get("/api/v1/search?q=社保").status_code,
        "GET /verify/…": client.get("/verify/not-a-token").status_code,
        "GET /api/v1/licenses/verify/…": client.get("/api/v1/licenses/verify/not-a-token").status_code,
        "GET /licences/keys.json": client.get("/licences/keys.json").status_code,
    }


def _assert_served(statuses: dict[str, int]) -> None:
    failed = {name: status for name, status in statuses.items() if status >= 500}
    assert not failed, failed
    assert statuses["POST /api/v1/items"] == 201, statuses


def _assert_login_still_limited(client: Any) -> None:
    form = {"username": "limit_probe", "password": "wrong-password"}
    statuses = [client.post("/login", data=form).status_code for _ in range(LOGIN_LIMIT + 1)]
    assert 429 in statuses, statuses
    assert all(s in (401, 429) for s in statuses), statuses


def test_closed_redis_port_serves_requests_with_limits_in_memory(
    db: Any, session: Any, tmp_path: Path
) -> None:
    token = make_user(session, Role.ADMIN)[2]
    session.flush()
    client = _client(db, tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    _assert_served(_everyday_requests(client, token))
    _assert_login_still_limited(client)


def test_health_and_readiness_say_degraded_naming_redis(db: Any, tmp_path: Path) -> None:
    client = _client(db, tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    health = client.get("/healthz")
    assert health.status_code == 200  # the process is alive and serves: no restart wanted
    body = health.get_json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["redis"]
    assert body["redis"]["state"] == "error"

    ready = client.get("/readyz")
    body = ready.get_json()
    assert ready.status_code == 200, body  # still serving: the outbox and the in-memory limits carry on
    assert body["status"] == "degraded"
    assert "broker" in body["degraded"]
    assert "rate_limiter" in body["degraded"]
    assert body["checks"]["rate_limiter"]["state"] == "error"
    assert body["checks"]["database"]["state"] == "ok"


class RedisServer:
    """A redis-server of this test's own, on a free port, stopped and started at will."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (make test installs it)"
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=0.2).ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def test_redis_stopped_mid_run_degrades_and_recovers(
    db: Any, session: Any, tmp_path: Path, own_redis: RedisServer
) -> None:
    token = make_user(session, Role.ADMIN)[2]
    session.flush()
    client = _client(db, tmp_path, own_redis.url)
    assert client.get("/healthz").get_json()["status"] == "ok"
    before = _everyday_requests(client, token)
    assert all(s < 500 for s in before.values()), before
    assert redis.Redis.from_url(own_redis.url).keys("LIMITS*"), "limits were not kept in Redis"

    own_redis.stop()
    during = _everyday_requests(client, token)
    assert all(s < 500 for s in during.values()), during
    _assert_login_still_limited(client)
    assert client.get("/healthz").get_json()["degraded"] == ["redis"]

    own_redis.start()
    assert client.get("/healthz").get_json()["status"] == "ok"
    assert client.get("/readyz").get_json()["checks"]["rate_limiter"]["state"] == "ok"
