"""CSRF protection on every form: each page route that accepts POST (or another unsafe method)
refuses a request without a token with 400, in a fresh app where CSRF is on as in production; only
the API blueprints (bearer-token clients) are exempt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from werkzeug.routing import IntegerConverter, Rule

from core import users
from core.auth import SYSTEM, Role
from core.db import Database
from tests.conftest import make_settings

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PASSWORD = "csrf-pass-1"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def protected(db: Database, tmp_path: Path) -> Any:
    from webapp import create_app

    app = create_app(make_settings(tmp_path, db.url), database=db)
    assert app.config["WTF_CSRF_ENABLED"] is True
    return app


def is_exempt(app: Any, rule: Rule) -> bool:
    """Flask-WTF's own test (CSRFProtect._is_exempt) for the rule's view."""
    csrf = app.extensions["csrf"]
    blueprint = rule.endpoint.rpartition(".")[0]
    if app.blueprints.get(blueprint) in csrf._exempt_blueprints:
        return True
    view = app.view_functions[rule.endpoint]
    return f"{view.__module__}.{view.__name__}" in csrf._exempt_views


def sample_url(rule: Rule) -> str:
    """The rule's URL with plausible values for its arguments."""
    values: dict[str, Any] = dict(rule.defaults or {})
    for name in rule.arguments - set(values):
        converter = rule._converters[name]
        kind = type(converter).__name__
        if isinstance(converter, IntegerConverter):  # also core.app.IdConverter
            values[name] = 2025 if name == "year" else 1
        elif kind == "AnyConverter":
            values[name] = sorted(converter.items)[0] if hasattr(converter, "items") else "x"
        elif getattr(converter, "minlength", 1) == 21 or "length=21" in rule.rule:
            values[name] = "11100000000013338W032"
        else:
            values[name] = "x"
    built = rule.build(values, append_unknown=False)
    assert built is not None, rule.rule
    return built[1]


def unsafe_page_rules(app: Any) -> list[Rule]:
    return [
        r for r in app.url_map.iter_rules() if r.methods and r.methods & UNSAFE and not is_exempt(app, r)
    ]


def login(client: Any, username: str) -> None:
    page = client.get("/login")
    token = TOKEN.search(page.get_data(as_text=True))
    assert token is not None
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def test_every_page_form_refuses_a_post_without_token(protected: Any, session: Any) -> None:
    users.create_user(session, SYSTEM, users.NewUser(
        username="csrf_admin", password=PASSWORD, display_name="管理员", role=Role.ADMIN
    ))[0]
    session.flush()
    client = protected.test_client()
    login(client, "csrf_admin")

    rules = unsafe_page_rules(protected)
    paths = {r.rule for r in rules}
    # The enumeration really covers the page forms (login, logout, staff, licences, admin, reports).
    assert {"/login", "/logout", "/staff/entries/<int:entry_id>/edit", "/staff/licences/new",
            "/admin/users", "/admin/bundles/new"} <= paths
    assert len(rules) >= 30

    accepted = []
    for rule in rules:
        for method in sorted(rule.methods & UNSAFE):
            url = sample_url(rule)
            response = client.open(url, method=method, data={"name": "x", "reason": "x"})
            body = response.get_data(as_text=True)
            if response.status_code != 400 or "表单已过期或来源不明" not in body:
                accepted.append(f"{method} {url} -> {response.status_code}")
            # A token from another form field name or a junk header is no better.
            response = client.open(url, method=method, data={"csrf_token": "forged"},
                                   headers={"X-CSRFToken": "forged"})
            if response.status_code != 400:
                accepted.append(f"{method} {url} (forged token) -> {response.status_code}")
    assert accepted == []
    # Nothing was changed by the refused requests: the session is still logged in.
    assert client.get("/staff/entries/").status_code == 200


def test_the_same_post_with_the_pages_token_is_accepted(protected: Any, session: Any) -> None:
    """The refusal above is the token check, not something else: with the token the form works."""
    users.create_user(session, SYSTEM, users.NewUser(
        username="csrf_editor", password=PASSWORD, display_name="编辑", role=Role.ADMIN
    ))[0]
    session.flush()
    client = protected.test_client()
    assert client.post("/login", data={"username": "csrf_editor", "password": PASSWORD}).status_code == 400
    login(client, "csrf_editor")
    page = client.get("/staff/entries/").get_data(as_text=True)
    token = TOKEN.search(page)
    assert token is not None
    assert client.post("/logout", data={}).status_code == 400
    assert client.post("/logout", data={"csrf_token": token.group(1)}).status_code == 302
    assert client.get("/staff/entries/").status_code in (302, 401)


def test_only_api_routes_are_exempt_from_csrf(protected: Any) -> None:
    rules = protected.url_map.iter_rules()
    exempt = [r.rule for r in rules if r.methods & UNSAFE and is_exempt(protected, r)]
    assert exempt, "the bearer-token API is expected to be exempt"
    assert [path for path in exempt if not path.startswith("/api/")] == []


def test_refusal_is_json_for_the_api_shape_and_a_page_for_forms(protected: Any) -> None:
    client = protected.test_client()
    page = client.post("/login", data={"username": "a", "password": "b"})
    assert page.status_code == 400
    assert page.mimetype == "text/html"
    assert "表单已过期或来源不明" in page.get_data(as_text=True)
    as_json = client.post("/login", data={}, headers={"Accept": "application/json"})
    assert as_json.status_code == 400
    assert as_json.get_json()["code"] == "csrf_failed"


def test_api_write_with_only_the_login_cookie_needs_a_csrf_token(protected: Any, session: Any) -> None:
    users.create_user(session, SYSTEM, users.NewUser(
        username="csrf_cookie", password=PASSWORD, display_name="管理员", role=Role.ADMIN
    ))[0]
    session.flush()
    client = protected.test_client()
    login(client, "csrf_cookie")
    response = client.post("/api/v1/entries/1/submit")
    assert response.status_code == 400
    assert response.get_json()["code"] == "csrf_failed"
