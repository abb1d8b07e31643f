"""Login and logout pages. The rules (failure counting, locks, audit) live in core.login."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask import session as cookie_session

from core.audit import record
from core.auth import Role, User, check_password, end_sessions, set_password
from core.errors import Invalid
from core.login import USERNAME_MAX, LoginOutcome, authenticate
from core.web import (
    SESSION_USER,
    current_principal,
    db_session,
    limiter,
    same_site_path,
    start_login_session,
)

bp = Blueprint("auth", __name__)

MESSAGES = {
    LoginOutcome.WRONG: "用户名或密码错误",
    LoginOutcome.LOCKED: "登录失败次数过多，账号已临时锁定，请稍后再试",
}


@bp.get("/staff/")
def home() -> Any:
    # A 证照经办 has no catalogue rights: the licence list is its work.
    if current_principal().role == Role.LICENCE_CLERK:
        return redirect("/staff/licences/")
    return redirect("/staff/entries/")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login() -> Any:
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:USERNAME_MAX]
        password = request.form.get("password", "")[:200]
        session = db_session()
        result = authenticate(session, username, password)
        if result.outcome == LoginOutcome.OK and result.user is not None:
            start_login_session(result.user)
            return redirect(same_site_path(request.args.get("next")) or url_for("auth.home"))
        # The web boundary rolls back error responses; the count and its audit rows must stay.
        session.commit()
        return render_template("login.html", error=MESSAGES[result.outcome], username=username), 401
    return render_template("login.html", error=None, username="")


@bp.route("/staff/password", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def change_password() -> Any:
    """Change one's own password: every other session of the user ends, this browser stays in."""
    principal = current_principal()
    if not principal.is_authenticated or principal.user_id is None:
        return redirect(url_for("auth.login", next="/staff/password"))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        session = db_session()
        user = session.get(User, principal.user_id)
        new = request.form.get("new_password", "")[:201]
        if user is None or not check_password(user, request.form.get("current_password", "")[:200]):
            errors["current_password"] = ["当前密码不正确"]
        elif new != request.form.get("confirm_password", "")[:201]:
            errors["confirm_password"] = ["两次输入的新密码不一致"]
        else:
            try:
                set_password(session, principal, user.id, new)  # type: ignore[arg-type]  # a loaded user has an id
            except Invalid as exc:
                errors = {"new_password": [exc.message]}
            else:
                start_login_session(user)  # under the new epoch: this browser stays signed in
                flash("密码已修改，其他设备上的登录已全部退出", "ok")
                return redirect(url_for("auth.home"), 303)
        return render_template("change_password.html", errors=errors), 422
    return render_template("change_password.html", errors=errors)


@bp.post("/logout")
def logout() -> Any:
    """Ends every session of the user, in every browser: a copy of the cookie is worthless after."""
    principal = current_principal()
    if principal.is_authenticated and principal.user_id is not None and cookie_session.get(SESSION_USER):
        session = db_session()
        end_sessions(session, principal.user_id)
        record(session, actor=principal, action="logout", entity_type="user", entity_id=principal.user_id)
    cookie_session.clear()
    return redirect("/")


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
