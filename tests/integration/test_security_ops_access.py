"""Operator surfaces: /metrics only with the scrape token or from an allowed network, and cached;
the district-wide sync status only for district administrators; the real client address behind a
configured number of proxies; the city registry key never silently defaulted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.auth import Role
from core.config import Settings, SettingsError
from tests.conftest import make_settings
from tests.factories.catalog import OTHER_TOWN, make_department, make_user
from webapp import create_app

SCRAPE_TOKEN = "scrape-" + "s" * 32


def _app(db: Any, tmp_path: Path, **overrides: Any) -> Any:
    app = create_app(make_settings(tmp_path, db.url, **overrides), database=db)
    app.config["WTF_CSRF_ENABLED"] = False
    return app


def test_metrics_are_refused_when_neither_token_nor_network_is_configured(db: Any, tmp_path: Path) -> None:
    response = _app(db, tmp_path).test_client().get("/metrics")
    assert response.status_code == 403
    body = response.get_json()
    assert body["code"] == "forbidden"
    assert "METRICS_TOKEN" in body["message"]


def test_metrics_need_the_scrape_token(db: Any, tmp_path: Path) -> None:
    client = _app(db, tmp_path, metrics_token=SCRAPE_TOKEN).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert ok.status_code == 200
    assert "gaogang_licence_outbox_records" in ok.get_data(as_text=True)


def test_metrics_from_an_allowed_network_need_no_token(db: Any, tmp_path: Path) -> None:
    client = _app(db, tmp_path, metrics_allowed_networks=("10.20.0.0/16",)).test_client()
    inside = client.get("/metrics", environ_overrides={"REMOTE_ADDR": "10.20.3.4"})
    assert inside.status_code == 200
    outside = client.get("/metrics", environ_overrides={"REMOTE_ADDR": "10.21.3.4"})
    assert outside.status_code == 403


def test_metrics_are_computed_once_per_cache_period(db: Any, tmp_path: Path) -> None:
    client = _app(db, tmp_path, metrics_token=SCRAPE_TOKEN, metrics_cache_seconds=60).test_client()
    headers = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        first = client.get("/metrics", headers=headers)
        queries_first = len(statements)
        second = client.get("/metrics", headers=headers)
        third = client.get("/metrics", headers=headers)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert first.status_code == second.status_code == third.status_code == 200
    assert queries_first > 0
    assert len(statements) == queries_first  # the scrapes within the period ran no SQL
    assert second.get_data() == first.get_data() == third.get_data()


def test_settings_read_metrics_and_proxy_variables() -> None:
    env = {"INSTANCE_DIR": "/tmp/unused-sec1", "SECRET_KEY": "x",  # noqa: S108  (never written)
           "METRICS_TOKEN": SCRAPE_TOKEN, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, 192.168.1.0/24",
           "TRUSTED_PROXIES": "1"}
    settings = Settings.from_env(env)
    assert settings.metrics_token == SCRAPE_TOKEN
    assert settings.metrics_allowed_networks == ("10.0.0.0/8", "192.168.1.0/24")
    assert settings.trusted_proxies == 1
    assert Settings.from_env({**env, "TRUSTED_PROXIES": ""}).trusted_proxies == 0
    with pytest.raises(SettingsError, match="METRICS_ALLOWED_NETWORKS"):
        Settings.from_env({**env, "METRICS_ALLOWED_NETWORKS": "10.0.0.300/8"})
    with pytest.raises(SettingsError, match="METRICS_TOKEN"):
        Settings.from_env({**env, "METRICS_TOKEN": "short"})
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        Settings.from_env({**env, "TRUSTED_PROXIES": "-1"})


# ---------------------------------------------------------------- sync status


def test_district_sync_status_is_for_district_administrators_only(client: Any, session: Any) -> None:
    department = make_department(session, "高港区行政审批局")
    operator = make_user(session, Role.DIVISION_OPERATOR, division_code=OTHER_TOWN)[2]
    editor = make_user(session, Role.DEPT_EDITOR, department=department)[2]
    reviewer = make_user(session, Role.DEPT_REVIEWER, department=department)[2]
    admin = make_user(session, Role.ADMIN)[2]
    session.flush()

    def status(token: str) -> int:
        response = client.get("/api/v1/sync/status", headers={"Authorization": f"Bearer {token}"})
        code: int = response.status_code
        return code

    assert status(operator) == 403
    assert status(editor) == 403
    assert status(reviewer) == 403
    assert status(admin) == 200
    assert client.get("/api/v1/sync/status").status_code == 401


# ---------------------------------------------------------------- proxies


def _login_statuses(client: Any, forwarded_for: str, n: int) -> list[int]:
    form = {"username": "proxy_probe", "password": "wrong-password"}
    return [
        client.post("/login", data=form, headers={"X-Forwarded-For": forwarded_for},
                    environ_overrides={"REMOTE_ADDR": "10.9.9.9"}).status_code
        for _ in range(n)
    ]


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(db: Any, tmp_path: Path) -> None:
    client = _app(db, tmp_path, ratelimit_enabled=True, redis_url=None, trusted_proxies=1).test_client()
    assert _login_statuses(client, "203.0.113.7", 21)[-1] == 429
    assert _login_statuses(client, "203.0.113.8", 1) == [401]  # another citizen behind the same proxy


def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_limit(
    db: Any, tmp_path: Path
) -> None:
    client = _app(db, tmp_path, ratelimit_enabled=True, redis_url=None).test_client()
    statuses = [_login_statuses(client, f"198.51.100.{n}", 1)[0] for n in range(21)]
    assert statuses[-1] == 429


def test_the_access_log_and_audit_see_the_real_client_behind_the_proxy(db: Any, tmp_path: Path) -> None:
    app = _app(db, tmp_path, trusted_proxies=1)

    @app.get("/_test/addr")
    def _addr() -> dict[str, str | None]:
        from flask import request

        return {"addr": request.remote_addr}

    client = app.test_client()
    seen = client.get("/_test/addr", headers={"X-Forwarded-For": "203.0.113.9"},
                      environ_overrides={"REMOTE_ADDR": "10.9.9.9"}).get_json()
    assert seen == {"addr": "203.0.113.9"}


# ---------------------------------------------------------------- city registry key


def test_the_app_refuses_to_start_without_a_city_registry_key(tmp_path: Path) -> None:
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x"})
    assert settings.city_registry_key == ""
    with pytest.raises(SettingsError, match="CITY_REGISTRY_KEY"):
        create_app(settings)


def test_an_explicit_city_registry_key_is_used(tmp_path: Path) -> None:
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x",
                                  "CITY_REGISTRY_KEY": "k" * 32})
    assert settings.require_city_registry_key() == "k" * 32
    with pytest.raises(SettingsError, match="CITY_REGISTRY_KEY"):
        Settings.from_env({"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "x",
                           "CITY_REGISTRY_KEY": "dev-shared-key"}).require_city_registry_key()
