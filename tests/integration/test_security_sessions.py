"""Sessions end on the server: logout, a password change and deactivation end every session of the
user (a cookie saved before no longer opens anything), and idle and absolute timeouts hold."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlmodel import select

from core import users
from core.auth import SYSTEM, Principal, Role, User, set_password
from core.users import set_user_active

PASSWORD = "session-pass-1"
STAFF_PAGE = "/staff/entries/"
COOKIE = "gg_session"


def _user(session: Any, username: str, role: Role = Role.ADMIN) -> User:
    user, _ = users.create_user(session, SYSTEM, users.NewUser(
        username=username, password=PASSWORD, display_name=username, role=role))
    session.flush()
    return user


def _browser(app: Any, username: str, password: str = PASSWORD) -> Any:
    browser = app.test_client()
    response = browser.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert browser.get(STAFF_PAGE).status_code == 200
    return browser


def _cookie(browser: Any) -> str:
    cookie = browser.get_cookie(COOKIE)
    assert cookie is not None
    value: str = cookie.value
    return value


def _replay(app: Any, value: str) -> Any:
    thief = app.test_client()
    thief.set_cookie(COOKIE, value)
    return thief.get(STAFF_PAGE)


def _assert_signed_out(response: Any) -> None:
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_a_cookie_saved_before_logout_no_longer_opens_staff_pages(app: Any, session: Any) -> None:
    _user(session, "logout_saver")
    browser = _browser(app, "logout_saver")
    saved = _cookie(browser)
    assert _replay(app, saved).status_code == 200  # the saved cookie works until logout
    assert browser.post("/logout").status_code == 302
    _assert_signed_out(_replay(app, saved))
    _assert_signed_out(browser.get(STAFF_PAGE))


def test_logout_ends_the_users_sessions_in_other_browsers_too(app: Any, session: Any) -> None:
    _user(session, "two_browsers")
    office = _browser(app, "two_browsers")
    home = _browser(app, "two_browsers")
    office.post("/logout")
    _assert_signed_out(home.get(STAFF_PAGE))
    # Logging in again works, and the new session is independent of the ended ones.
    _browser(app, "two_browsers")


def test_logout_of_one_user_leaves_other_users_signed_in(app: Any, session: Any) -> None:
    _user(session, "leaver")
    _user(session, "stayer")
    leaver = _browser(app, "leaver")
    stayer = _browser(app, "stayer")
    leaver.post("/logout")
    assert stayer.get(STAFF_PAGE).status_code == 200


def test_a_password_change_ends_every_session_of_the_user(app: Any, session: Any) -> None:
    user = _user(session, "pw_changer")
    browser = _browser(app, "pw_changer")
    saved = _cookie(browser)
    set_password(session, Principal.of(user), user.id, "a-new-password-2")
    session.flush()
    _assert_signed_out(browser.get(STAFF_PAGE))
    _assert_signed_out(_replay(app, saved))
    _browser(app, "pw_changer", "a-new-password-2")


def test_changing_ones_password_on_the_page_signs_out_the_other_browsers_only(app: Any, session: Any) -> None:
    _user(session, "pw_page")
    office = _browser(app, "pw_page")
    home = _browser(app, "pw_page")
    new = "page-new-pass-9"
    form = {"current_password": PASSWORD, "new_password": new, "confirm_password": new}

    wrong = office.post("/staff/password", data={**form, "current_password": "not-my-password"})
    assert wrong.status_code == 422
    assert "当前密码不正确" in wrong.get_data(as_text=True)
    mismatch = office.post("/staff/password", data={**form, "confirm_password": "something-else"})
    assert mismatch.status_code == 422
    assert home.get(STAFF_PAGE).status_code == 200  # refused changes end nothing

    changed = office.post("/staff/password", data=form)
    assert changed.status_code == 303
    assert office.get(STAFF_PAGE).status_code == 200
    _assert_signed_out(home.get(STAFF_PAGE))
    _browser(app, "pw_page", "page-new-pass-9")


def test_the_password_page_needs_a_login(client: Any) -> None:
    response = client.get("/staff/password")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_only_the_user_or_an_administrator_changes_a_password(session: Any) -> None:
    from core.errors import Forbidden
    from tests.factories.catalog import VILLAGE, seed_divisions

    seed_divisions(session)
    target = _user(session, "pw_target")
    other, _ = users.create_user(session, SYSTEM, users.NewUser(
        username="pw_other", password=PASSWORD, display_name="其他",
        role=Role.DIVISION_OPERATOR, division_code=VILLAGE))
    with pytest.raises(Forbidden):
        set_password(session, Principal.of(other), target.id, "a-new-password-3")


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_them(app: Any, session: Any) -> None:
    admin = _user(session, "deact_admin")
    _user(session, "deact_clerk")
    browser = _browser(app, "deact_clerk")
    saved = _cookie(browser)
    clerk = session.exec(select(User).where(User.username == "deact_clerk")).one()
    set_user_active(session, Principal.of(admin), clerk.id, False)
    set_user_active(session, Principal.of(admin), clerk.id, True)
    session.flush()
    _assert_signed_out(_replay(app, saved))


def _aged(app: Any, value: str, **ages: float) -> str:
    """The same signed session with its timestamps moved into the past (as a saved cookie would be)."""
    serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(value)
    now = time.time()
    for key, seconds in ages.items():
        assert key in data, sorted(data)
        data[key] = now - seconds
    signed: str = serializer.dumps(data)
    return signed


def test_an_idle_session_expires(app: Any, session: Any) -> None:
    _user(session, "idler")
    browser = _browser(app, "idler")
    idle = app.extensions["gaogang.settings"].session_idle_minutes * 60
    assert 0 < idle <= 30 * 60
    _assert_signed_out(_replay(app, _aged(app, _cookie(browser), seen=idle + 5)))
    assert _replay(app, _aged(app, _cookie(browser), seen=idle - 60)).status_code == 200


def test_a_busy_session_still_ends_at_the_absolute_limit(app: Any, session: Any) -> None:
    _user(session, "busy")
    browser = _browser(app, "busy")
    limit = app.extensions["gaogang.settings"].session_max_hours * 3600
    assert 0 < limit <= 12 * 3600
    # Active a second ago, but signed in longer ago than the limit.
    _assert_signed_out(_replay(app, _aged(app, _cookie(browser), seen=1, auth_at=limit + 5)))
    assert _replay(app, _aged(app, _cookie(browser), seen=1, auth_at=limit - 60)).status_code == 200


def test_timeouts_are_configurable() -> None:
    from core.config import Settings, SettingsError

    env = {"INSTANCE_DIR": "/tmp/unused-sec1", "SECRET_KEY": "x",  # noqa: S108  (never written: SECRET_KEY is given)
           "SESSION_IDLE_MINUTES": "15", "SESSION_MAX_HOURS": "8"}
    settings = Settings.from_env(env)
    assert (settings.session_idle_minutes, settings.session_max_hours) == (15, 8)
    with pytest.raises(SettingsError, match="SESSION_IDLE_MINUTES"):
        Settings.from_env({**env, "SESSION_IDLE_MINUTES": "0"})
