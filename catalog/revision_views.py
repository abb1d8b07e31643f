"""Staff pages of revisions and review settings: open, submit, withdraw, approve and reject a
revision of a published entry; the administrators' four-eyes switch.

Every write goes through catalog.revisions or catalog.review_settings; this module parses forms,
flashes the services' Chinese messages and redirects. The entry page and the edit form that show a
revision live in catalog/views.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for

from catalog import history, review_settings, revisions
from catalog.views import _flash_domain_error
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.web import db_session, require_admin, require_login

bp = Blueprint("revisions", __name__, template_folder="templates")
MAX_REASON = 500


def _back(entry_id: int) -> Any:
    return redirect(url_for("staff.entry_detail", entry_id=entry_id))


def _reason(required: bool) -> str | None:
    reason = request.form.get("reason", "").strip()
    if required and not reason:
        flash("请填写理由", "error")
        return None
    if len(reason) > MAX_REASON:
        flash(f"理由不能超过 {MAX_REASON} 个字", "error")
        return None
    return reason


def _act(entry_id: int, action: Callable[..., Any], done: str, *, reason: str = "none") -> Any:
    """Run one revision service for the logged-in user; its refusals come back as a flash line.
    ``reason`` is "none" (no reason), "optional" or "required"."""
    principal = require_login()
    session = db_session()
    kwargs: dict[str, Any] = {}
    if reason != "none":
        text = _reason(required=reason == "required")
        if text is None:
            return _back(entry_id)
        kwargs["reason"] = text or None
    try:
        action(session, principal, entry_id, **kwargs)
    except (Invalid, Conflict, Forbidden, NotFound) as error:
        session.rollback()
        _flash_domain_error(error)
        return _back(entry_id)
    flash(done, "ok")
    return None


@bp.post("/staff/entries/<int:entry_id>/revision")
def revision_open(entry_id: int) -> Any:
    done = "已发起修订：修订审核通过前，公众仍看到已发布版本"
    refused = _act(entry_id, revisions.open_revision, done, reason="required")
    return refused or redirect(url_for("staff.entry_edit", entry_id=entry_id))


ALIGN_REASON = "按上级基本目录更新三级四同字段（名称、事项类型、设定依据、编码）"


def _open_and_align(session: Any, principal: Any, entry_id: int) -> None:
    """Ask, in the open revision (opened for it when there is none), to adopt the upper-level values."""
    if revisions.open_revision_of(session, entry_id) is None:
        revisions.open_revision(session, principal, entry_id, reason=ALIGN_REASON)
    revisions.update_revision(session, principal, entry_id, fields={}, align=True)


@bp.post("/staff/entries/<int:entry_id>/revision/align")
def revision_align(entry_id: int) -> Any:
    done = "已在修订中按上级目录更新三级四同字段：提交审核并通过后生效"
    return _act(entry_id, _open_and_align, done) or _back(entry_id)


@bp.post("/staff/entries/<int:entry_id>/revision/submit")
def revision_submit(entry_id: int) -> Any:
    return _act(entry_id, revisions.submit_revision, "修订已提交审核") or _back(entry_id)


@bp.post("/staff/entries/<int:entry_id>/revision/withdraw")
def revision_withdraw(entry_id: int) -> Any:
    done = "修订已撤回，已发布版本不变"
    return _act(entry_id, revisions.withdraw_revision, done, reason="optional") or _back(entry_id)


@bp.post("/staff/entries/<int:entry_id>/revision/approve")
def revision_approve(entry_id: int) -> Any:
    return _act(entry_id, revisions.approve_revision, "修订审核通过，已替换发布版本") or _back(entry_id)


@bp.post("/staff/entries/<int:entry_id>/revision/reject")
def revision_reject(entry_id: int) -> Any:
    done = "修订已退回，已发布版本不变"
    return _act(entry_id, revisions.reject_revision, done, reason="required") or _back(entry_id)


@bp.route("/admin/review-settings", methods=["GET", "POST"])
def admin_review_settings() -> Any:
    principal = require_admin()
    session = db_session()
    if request.method == "POST":
        choice = request.form.get("four_eyes")
        # Only the form's own values: a missing or garbled field must not switch the check off.
        reason = _reason(required=False) if choice in ("0", "1") else None
        if choice not in ("0", "1"):
            flash("未指定开启或关闭双人审核，设置未改变", "error")
        if reason is not None:
            enabled = choice == "1"
            try:
                review_settings.set_four_eyes(session, principal, enabled, reason or None)
            except (Invalid, Forbidden) as error:
                session.rollback()
                _flash_domain_error(error)
            else:
                flash("已开启双人审核" if enabled else "已关闭双人审核", "ok")
        return redirect(url_for("revisions.admin_review_settings"))
    return render_template(
        "staff/admin_review_settings.html",
        four_eyes=review_settings.four_eyes_enabled(session),
        label=review_settings.SETTING_LABELS[review_settings.FOUR_EYES],
    )


@bp.app_template_filter("china_time")
def _china_time(value: datetime | str | None) -> str:
    return history.china_time(value)


@bp.app_template_filter("actor_name")
def _actor_name(value: str | None) -> str:
    """Who acted, as staff read it: the importer and the demo act as 系统."""
    return "系统" if value in (None, "", "system") else value


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
