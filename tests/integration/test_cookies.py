"""The session cookie is HttpOnly and SameSite=Lax always, and Secure when the site is served over
https (PUBLIC_BASE_URL), checked on the real Set-Cookie headers of an app built by create_app."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from core import users
from core.auth import SYSTEM, Role
from core.db import Database
from tests.conftest import make_settings

PASSWORD = "cookie-pass-1"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def build(db: Database, tmp_path: Path, base_url: str) -> Any:
    from webapp import create_app

    return create_app(make_settings(tmp_path, db.url, public_base_url=base_url), database=db)


def login_cookies(app: Any, session: Any, username: str, base_url: str) -> list[str]:
    """Set-Cookie headers of the login page and of a successful login (CSRF on, as in production)."""
    users.create_user(session, SYSTEM, users.NewUser(
        username=username, password=PASSWORD, display_name="员工", role=Role.ADMIN
    ))[0]
    session.flush()
    client = app.test_client()
    https = base_url.startswith("https")
    page = client.get("/login", base_url=base_url)
    headers = page.headers.getlist("Set-Cookie")
    token = TOKEN.search(page.get_data(as_text=True))
    assert token is not None
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        base_url=base_url,
        headers={"Referer": f"{base_url}/login"} if https else {},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    headers += response.headers.getlist("Set-Cookie")
    assert headers
    return headers


def attributes(header: str) -> tuple[str, set[str], dict[str, str]]:
    name = header.split("=", 1)[0]
    parts = [p.strip() for p in header.split(";")[1:]]
    flags = {p.lower() for p in parts if "=" not in p}
    values = {p.split("=", 1)[0].lower(): p.split("=", 1)[1] for p in parts if "=" in p}
    return name, flags, values


@pytest.mark.parametrize("base_url", ["https://zwfw.gaogang.example", "http://127.0.0.1:5000"])
def test_session_cookie_is_httponly_samesite_lax_and_secure_over_https(
    db: Database, session: Any, tmp_path: Path, base_url: str
) -> None:
    app = build(db, tmp_path, base_url)
    headers = login_cookies(app, session, f"cookie_{base_url.split(':')[0]}", base_url)
    names = set()
    for header in headers:
        name, flags, values = attributes(header)
        names.add(name)
        assert "httponly" in flags, header
        assert values.get("samesite") == "Lax", header
        assert ("secure" in flags) is base_url.startswith("https://"), header
        assert "domain" not in values, header  # host-only: never shared with sibling subdomains
    assert names == {"gg_session"}


def test_the_browser_keeps_the_login_cookie_as_secure_http_only_and_lax(
    db: Database, session: Any, tmp_path: Path
) -> None:
    """What a client stores after logging in over https (the cookie a page script cannot read and a
    plain-http request or a cross-site POST never carries)."""
    base = "https://zwfw.gaogang.example"
    app = build(db, tmp_path, base)
    client = app.test_client()
    login_cookies_with(client, session, base)
    cookie = client.get_cookie("gg_session", domain="zwfw.gaogang.example")
    assert cookie is not None
    assert (cookie.secure, cookie.http_only, cookie.same_site) == (True, True, "Lax")
    assert client.get("/staff/entries/", base_url=base).status_code == 200


def login_cookies_with(client: Any, session: Any, base: str) -> None:
    users.create_user(session, SYSTEM, users.NewUser(
        username="cookie_secure", password=PASSWORD, display_name="员工", role=Role.ADMIN
    ))[0]
    session.flush()
    page = client.get("/login", base_url=base)
    token = TOKEN.search(page.get_data(as_text=True))
    assert token is not None
    response = client.post(
        "/login",
        data={"username": "cookie_secure", "password": PASSWORD, "csrf_token": token.group(1)},
        base_url=base,
        headers={"Referer": f"{base}/login"},
    )
    assert response.status_code == 302
