"""Rate limits on login, search, verification and the API, exercised on a fresh app with limits on.

The shared test settings turn limits off; each test here builds its own app with RATELIMIT enabled
and in-memory storage, so the counters start at zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from webapp import create_app


@pytest.fixture
def limited_client(db: Any, tmp_path: Path) -> Any:
    settings = make_settings(tmp_path, db.url, ratelimit_enabled=True, redis_url=None)
    assert settings.ratelimit_storage_uri.startswith("memory://")
    app = create_app(settings, database=db)
    app.config["WTF_CSRF_ENABLED"] = False
    return app.test_client()


def _hit_until_limited(client: Any, method: str, url: str, allowed: int, **kwargs: Any) -> Any:
    for n in range(allowed):
        response = client.open(url, method=method, **kwargs)
        assert response.status_code != 429, f"limited after {n} requests, expected {allowed}"
    return client.open(url, method=method, **kwargs)


def _assert_limited(response: Any) -> None:
    assert response.status_code == 429
    assert response.headers.get("Retry-After")


def test_api_blueprints_have_a_default_limit_per_client(limited_client: Any) -> None:
    response = _hit_until_limited(limited_client, "GET", "/api/v1/divisions/000000000000", 300)
    _assert_limited(response)
    body = response.get_json()
    assert body["code"] == "rate_limited"
    assert set(body) == {"code", "message", "details"}
    # Other clients (addresses) are not affected.
    other = limited_client.get(
        "/api/v1/divisions/000000000000", environ_overrides={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other.status_code == 404


def test_login_attempts_are_limited(limited_client: Any) -> None:
    form = {"username": "nobody", "password": "wrong-password"}
    _assert_limited(_hit_until_limited(limited_client, "POST", "/login", 20, data=form))


def test_search_api_and_search_page_are_limited(limited_client: Any) -> None:
    _assert_limited(_hit_until_limited(limited_client, "GET", "/api/v1/search?q=社保", 120))
    _assert_limited(_hit_until_limited(limited_client, "GET", "/search?q=社保", 120))


def test_online_verification_is_limited(limited_client: Any) -> None:
    _assert_limited(_hit_until_limited(limited_client, "GET", "/api/v1/licences/verify/not-a-token", 120))
    _assert_limited(_hit_until_limited(limited_client, "GET", "/verify/not-a-token", 120))
