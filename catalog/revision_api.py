"""Revision API (/api/v1/entries/{id}/revision...): open, change, submit, withdraw, approve and
reject the revision of a published entry, read its diff; the four-eyes review setting.

Permissions and rules are the services' (catalog.revisions, catalog.review_settings), so the API
and the staff pages agree; errors are ``{"code", "message", "details"}`` in Chinese.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.views import MethodView
from flask_smorest import Blueprint

from catalog import entries as entry_services
from catalog import history, review_settings, revisions
from catalog.api import BEARER, WRITE_ERRORS, _errors, entry_action
from catalog.revision_schemas import (
    ChangeSchema,
    OptionalReasonBodySchema,
    RejectSchema,
    ReviewSettingsSchema,
    ReviewSettingsUpdateSchema,
    RevisionChangeSchema,
    RevisionOpenSchema,
    RevisionSchema,
)
from core.errors import NotFound
from core.web import db_session, limiter, require_admin, require_login

blp = Blueprint(
    "revision_api",
    __name__,
    url_prefix="/api/v1",
    description="实施清单修订：修订期间继续按已发布版本服务；差异、审核与双人审核设置",
)
limiter.limit("300 per minute")(blp)


def _open(entry_id: int) -> Any:
    session = db_session()
    entry = entry_services.get_entry_in_work(session, require_login(), entry_id)
    revision = revisions.open_revision_of(session, entry.id)
    if revision is None:
        raise NotFound("该实施清单没有进行中的修订", {"revision": ["请先发起修订"]})
    return session, entry, revision


@blp.route("/entries/<int:entry_id>/revision")
class EntryRevision(MethodView):
    @blp.response(200, RevisionSchema)
    @blp.doc(security=BEARER)
    @_errors(401, 404)
    def get(self, entry_id: int) -> Any:
        """进行中的修订（草稿、待审核或已退回）"""
        return _open(entry_id)[2]

    @blp.arguments(RevisionOpenSchema)
    @blp.response(201, RevisionSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def post(self, body: dict[str, Any], entry_id: int) -> Any:
        """发起修订（须说明原因）。修订审核通过前，公众、检索、接口和导出继续使用已发布版本"""
        return revisions.open_revision(db_session(), require_login(), entry_id, reason=body["reason"])

    @blp.arguments(RevisionChangeSchema)
    @blp.response(200, RevisionSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def patch(self, body: dict[str, Any], entry_id: int) -> Any:
        """修改修订：{"fields": {...}, "materials": [...], "fees": [...]}；fields 合并，给出的列表整体替换"""
        fields = body.pop("fields", {})
        return revisions.update_revision(db_session(), require_login(), entry_id, fields=fields, **body)


def _action(path: str, name: str, summary: str, fn: Any, schema: Any = None) -> None:
    entry_action(blp, f"/entries/<int:entry_id>/revision/{path}", name, summary, fn, RevisionSchema, schema)


_action(
    "submit", "RevisionSubmit", "提交修订审核（修订须有改动且修订后的清单完整）", revisions.submit_revision
)
_action(
    "withdraw",
    "RevisionWithdraw",
    "撤回修订，已发布版本不变",
    revisions.withdraw_revision,
    OptionalReasonBodySchema,
)
_action(
    "approve",
    "RevisionApprove",
    "审核通过修订并替换发布版本（双人审核开启时提交人不能审核）",
    revisions.approve_revision,
)
_action(
    "reject",
    "RevisionReject",
    "退回修订，须说明原因；已发布版本不变",
    revisions.reject_revision,
    RejectSchema,
)


@blp.route("/entries/<int:entry_id>/revision/diff")
class EntryRevisionDiff(MethodView):
    @blp.response(200, ChangeSchema(many=True))
    @blp.doc(security=BEARER)
    @_errors(401, 404)
    def get(self, entry_id: int) -> Any:
        """修订与已发布版本的逐项差异（中文要素名、格式化取值，含申请材料、收费项目等子列表）"""
        session, entry, revision = _open(entry_id)
        return history.diff_states(
            revisions.published_state(session, entry), revisions.proposed_state(session, entry, revision)
        )


@blp.route("/entries/<int:entry_id>/diff")
class EntryDiff(MethodView):
    @blp.response(200, ChangeSchema(many=True))
    @blp.doc(security=BEARER)
    @_errors(401, 404)
    def get(self, entry_id: int) -> Any:
        """清单当前内容与上次发布版本的逐项差异（首次提交的草稿与“未填报”比较）"""
        session = db_session()
        entry = entry_services.get_entry_in_work(session, require_login(), entry_id)
        return history.diff_states(
            revisions.last_published_state(session, entry), revisions.published_state(session, entry)
        )


@blp.route("/review-settings")
class ReviewSettings(MethodView):
    @blp.response(200, ReviewSettingsSchema)
    @blp.doc(security=BEARER)
    @_errors(401, 403)
    def get(self) -> Any:
        """审核设置（区级管理员）：four_eyes 双人审核"""
        require_admin()
        return {"four_eyes": review_settings.four_eyes_enabled(db_session())}

    @blp.arguments(ReviewSettingsUpdateSchema)
    @blp.response(200, ReviewSettingsSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def put(self, body: dict[str, Any]) -> Any:
        """开启或关闭双人审核（区级管理员，记入审计日志）"""
        principal = require_admin()
        value = review_settings.set_four_eyes(db_session(), principal, body["four_eyes"], body.get("reason"))
        return {"four_eyes": value}


def register(app: Flask, api: Any) -> None:
    from core.web import csrf

    csrf.exempt(blp)
    api.register_blueprint(blp)
