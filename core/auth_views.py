"""Login and logout pages. Repeated failures lock the account for a while."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, redirect, render_template, request, url_for
from flask import session as cookie_session
from sqlmodel import select

from core.audit import record
from core.auth import Principal, Role, User, check_password
from core.types import utcnow
from core.web import current_principal, db_session, limiter

bp = Blueprint("auth", __name__)

MAX_FAILURES = 5
LOCK_MINUTES = 15


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths, never "//host" (open redirect).
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("auth.home")


@bp.get("/staff/")
def home() -> Any:
    # A 证照经办 has no catalogue rights: the licence list is its work.
    if current_principal().role == Role.LICENCE_CLERK:
        return redirect("/staff/licences/")
    return redirect("/staff/entries/")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()[:60]
        password = request.form.get("password", "")[:200]
        session = db_session()
        user = session.exec(select(User).where(User.username == username)).first()
        now = utcnow()
        if user is not None and user.locked_until and user.locked_until > now:
            error = "登录失败次数过多，账号已临时锁定，请稍后再试"
        elif user is None or not user.is_active or not check_password(user, password):
            error = "用户名或密码错误"
            if user is not None:
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILURES:
                    user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
                    user.failed_logins = 0
                session.flush()
                session.commit()  # the failure count must survive the error response
        else:
            user.failed_logins = 0
            user.locked_until = None
            cookie_session.clear()
            cookie_session["user_id"] = user.id
            record(session, actor=Principal.of(user), action="login", entity_type="user", entity_id=user.id)
            return redirect(_safe_next(request.args.get("next")))
        return render_template("login.html", error=error, username=username), 401
    return render_template("login.html", error=error, username="")


@bp.post("/logout")
def logout() -> Any:
    cookie_session.clear()
    return redirect("/")


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
