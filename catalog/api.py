"""Catalogue HTTP API (/api/v1/...): divisions, departments, basic items, implementation entries.

Machine clients authenticate with ``Authorization: Bearer <token>``; reads of published data need
no login. Permissions are decided by catalog.services, so the API, the pages and the CLI agree.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from flask import Flask, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import ValidationError

from catalog import attachments, consistency, divisions, entry_elements, scope, services, upper
from catalog import entries as entry_services
from catalog.schemas import (
    AttachmentSchema,
    AttachmentUploadSchema,
    ClaimSchema,
    CompetenceSchema,
    CoverageSchema,
    DeclineSchema,
    DepartmentCreateSchema,
    DepartmentQueryArgsSchema,
    DepartmentSchema,
    DivisionQueryArgsSchema,
    DivisionSchema,
    DriftSchema,
    EntryDetailSchema,
    EntryPageSchema,
    EntryQueryArgsSchema,
    EntrySchema,
    EntryUpdateSchema,
    EntryVersionSchema,
    ItemCreateSchema,
    ItemPageSchema,
    ItemQueryArgsSchema,
    ItemSchema,
    ItemUpdateSchema,
    NoContactCheckSchema,
    NoContactGapReportSchema,
    NoContactSchema,
    OptionalReasonSchema,
    ReasonSchema,
    WithdrawClaimSchema,
    WithdrawnClaimSchema,
)
from core.auth import Principal
from core.errors import Invalid
from core.schemas import ErrorSchema
from core.web import current_principal, db_session, limiter, require_login

blp = Blueprint(
    "catalog_api",
    __name__,
    url_prefix="/api/v1",
    description="政务服务事项：行政区划、实施主体、基本目录、实施清单",
)
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# Per client address, for every /api/ blueprint (views with their own limit, like search and
# verification, keep theirs). Generous for integrations, low enough to blunt scraping and brute force.
API_LIMIT = "300 per minute"
limiter.limit(API_LIMIT)(blp)
WRITE_ERRORS = (401, 403, 404, 409, 422)


def _errors(*codes: int) -> Any:
    def wrap(fn: Any) -> Any:
        for code in codes:
            fn = blp.alt_response(
                code,
                schema=ErrorSchema,
                description={
                    400: "请求格式错误（如 JSON 无法解析）",
                    401: "未登录或令牌无效",
                    403: "无权操作",
                    404: "对象不存在或不可见",
                    409: "状态冲突或重复",
                    422: "字段校验失败，details 指明字段",
                }[code],
            )(fn)
        return fn

    return wrap


def _flat_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages ({"materials": {0: {"copies": [...]}}}) as the service names
    fields ("materials[0].copies")."""
    if not isinstance(messages, dict):
        items = messages if isinstance(messages, list) else [messages]
        return {prefix or "_schema": [str(m) for m in items]}
    out: dict[str, list[str]] = {}
    for key, value in messages.items():
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            name = f"{prefix}[{key}]"
        else:
            name = f"{prefix}.{key}" if prefix else str(key)
        out.update(_flat_messages(value, name))
    return out


def entry_detail(session: Any, entry: Any, actor: Principal) -> dict[str, Any]:
    data = {name: getattr(entry, name) for name in EntrySchema().fields}
    data["department"] = services.get_department(session, entry.department_id)
    data["materials"] = entry_services.entry_materials(session, entry.id)
    data["fees"] = entry_services.entry_fees(session, entry.id)
    data["steps"] = entry_elements.entry_steps(session, entry.id)
    data["faqs"] = entry_elements.entry_faqs(session, entry.id)
    data["attachments"] = attachments.visible_attachments(session, actor, entry)
    data["no_contact_check"] = entry_services.check_no_contact(session, entry)
    return data


# --------------------------------------------------------------------------- divisions


@blp.route("/divisions")
class Divisions(MethodView):
    @blp.arguments(DivisionQueryArgsSchema, location="query")
    @blp.response(200, DivisionSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """行政区划列表（可按层级 level、上级 parent_code 过滤）"""
        return divisions.list_divisions(
            db_session(), level=args.get("level"), parent_code=args.get("parent_code"), q=args.get("q")
        )


@blp.route("/divisions/<string:code>")
class DivisionDetail(MethodView):
    @blp.response(200, DivisionSchema)
    @_errors(404)
    def get(self, code: str) -> Any:
        """单个行政区划"""
        return divisions.get_division(db_session(), code)


# --------------------------------------------------------------------------- departments


@blp.route("/departments")
class Departments(MethodView):
    @blp.arguments(DepartmentQueryArgsSchema, location="query")
    @blp.response(200, DepartmentSchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """实施主体列表"""
        return services.list_departments(db_session(), **args)

    @blp.arguments(DepartmentCreateSchema)
    @blp.response(201, DepartmentSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def post(self, body: dict[str, Any]) -> Any:
        """新增实施主体（区级管理员）。统一社会信用代码校验位不符时接受并给出 uscc_warning"""
        principal = require_login()
        return services.create_department(db_session(), principal, **body)


@blp.route("/departments/<int:department_id>")
class DepartmentDetail(MethodView):
    @blp.response(200, DepartmentSchema)
    @_errors(404)
    def get(self, department_id: int) -> Any:
        """单个实施主体"""
        return services.get_department(db_session(), department_id)


# --------------------------------------------------------------------------- basic items


@blp.route("/items")
class Items(MethodView):
    @blp.arguments(ItemQueryArgsSchema, location="query")
    @blp.response(200, ItemPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """基本目录事项列表（分页）"""
        rows, total = services.list_items(db_session(), **args)
        return {"items": rows, "total": total, "page": args["page"], "limit": args["limit"]}

    @blp.arguments(ItemCreateSchema)
    @blp.response(201, ItemSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def post(self, body: dict[str, Any]) -> Any:
        """新增基本目录事项（区级管理员）"""
        principal = require_login()
        return services.create_item(db_session(), principal, **body)


@blp.route("/items/<int:item_id>")
class ItemDetail(MethodView):
    @blp.response(200, ItemSchema)
    @_errors(404)
    def get(self, item_id: int) -> Any:
        """单个基本目录事项"""
        return services.get_item(db_session(), item_id)

    @blp.arguments(ItemUpdateSchema)
    @blp.response(200, ItemSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def patch(self, body: dict[str, Any], item_id: int) -> Any:
        """修改基本目录事项（区级管理员）；已认领的实施清单保留原值，差异见一致性报告"""
        principal = require_login()
        return services.update_item(db_session(), principal, item_id, **body)


@blp.route("/items/<int:item_id>/competence")
class ItemCompetence(MethodView):
    @blp.arguments(CompetenceSchema)
    @blp.response(200, ItemSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def put(self, body: dict[str, Any], item_id: int) -> Any:
        """登记事项的主管部门（区级管理员；department_id 为 null 表示清除）。

        区级部门只能认领本部门主管的事项"""
        principal = require_login()
        return scope.set_item_competence(db_session(), principal, item_id, body["department_id"])


@blp.route("/items/<int:item_id>/claim")
class ItemClaim(MethodView):
    @blp.arguments(ClaimSchema)
    @blp.response(201, EntrySchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def post(self, body: dict[str, Any], item_id: int) -> Any:
        """认领事项：为实施主体创建草稿实施清单（实施编码 = 统一社会信用代码 + 层级 + 基本编码）。

        区级部门只能认领主管部门为本部门的事项；区级管理员为非主管部门认领须填写 override_reason（记入审计）。
        镇街、村社区按行使层级认领。"""
        principal = require_login()
        return entry_services.claim_item(db_session(), principal, item_id=item_id, **body)


@blp.route("/items/<int:item_id>/decline")
class ItemDecline(MethodView):
    @blp.arguments(DeclineSchema)
    @blp.response(201, EntrySchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def post(self, body: dict[str, Any], item_id: int) -> Any:
        """登记“本地不适用”及原因"""
        principal = require_login()
        return entry_services.decline_item(db_session(), principal, item_id=item_id, **body)


# --------------------------------------------------------------------------- entries


@blp.route("/entries")
class Entries(MethodView):
    @blp.arguments(EntryQueryArgsSchema, location="query")
    @blp.response(200, EntryPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """实施清单列表（分页）。未登录只见已发布的；工作人员另见本部门/本辖区的全部"""
        rows, total = entry_services.list_entries(db_session(), current_principal(), **args)
        return {"items": rows, "total": total, "page": args["page"], "limit": args["limit"]}


@blp.route("/entries/<int:entry_id>")
class EntryDetail(MethodView):
    @blp.response(200, EntryDetailSchema)
    @_errors(404)
    def get(self, entry_id: int) -> Any:
        """实施清单详情（含申请材料、收费项目、不见面审批条件核验结果）"""
        session = db_session()
        principal = current_principal()
        entry = entry_services.get_visible_entry(session, principal, entry_id)
        return entry_detail(session, entry, principal)

    @blp.doc(
        security=BEARER,
        requestBody={"required": True, "content": {"application/json": {"schema": EntryUpdateSchema}}},
    )
    @blp.response(200, EntryDetailSchema)
    @_errors(*WRITE_ERRORS)
    def patch(self, entry_id: int) -> Any:
        """修改草稿的本地要素；materials / fees 给出时整体替换。继承字段（三级四同）不可修改。
        字段错误和字段之间的规则错误（要素质量检查）在同一次响应中全部返回"""
        principal = require_login()
        session = db_session()
        raw = request.get_json(silent=True)
        if not isinstance(raw, dict):
            raise Invalid("请求体应为 JSON 对象", {"_schema": ["应为 JSON 对象"]})
        # The schema is parsed here rather than by @blp.arguments so that its field errors and the
        # service's own checks (including the rules between fields) come back in one response.
        try:
            body, schema_errors = EntryUpdateSchema().load(raw), {}
        except ValidationError as error:
            schema_errors = _flat_messages(error.messages)
            body = dict(error.valid_data) if isinstance(error.valid_data, dict) else {}
        materials = body.pop("materials", None)
        fees = body.pop("fees", None)
        steps = body.pop("steps", None)
        faqs = body.pop("faqs", None)
        # A list the schema refused is left out of the change (its errors come back with the rest).
        lists = {"materials": materials, "fees": fees, "steps": steps, "faqs": faqs}
        for name in list(lists):
            if any(k == name or k.startswith(f"{name}[") for k in schema_errors):
                lists[name] = None
        entry = entry_services.update_entry(
            session, principal, entry_id, fields=body, **lists, known_errors=schema_errors,
        )
        return entry_detail(session, entry, principal)


@blp.route("/entries/<int:entry_id>/attachments")
class EntryAttachments(MethodView):
    @blp.arguments(AttachmentUploadSchema)
    @blp.response(201, AttachmentSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def post(self, body: dict[str, Any], entry_id: int) -> Any:
        """上传空白表格、示例样表或审批结果样本（PDF、Word、Excel、JPG、PNG，按内容核验，不超过 5 MB）；
        返回的 id 填入 materials[].blank_form / sample 或 result_sample"""
        principal = require_login()
        try:
            data = base64.b64decode(body["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(
                "上传文件：content_base64 不是有效的 Base64", {"content_base64": ["不是有效的 Base64"]}
            ) from None
        return attachments.upload_attachment(
            db_session(), principal, entry_id, filename=body["filename"], data=data
        )


@blp.route("/entries/by-code/<string:task_code>")
class EntryByCode(MethodView):
    @blp.response(200, EntryDetailSchema)
    @_errors(404)
    def get(self, task_code: str) -> Any:
        """按实施编码查询实施清单"""
        session = db_session()
        principal = current_principal()
        entry = entry_services.get_visible_entry_by_task_code(session, principal, task_code[:40])
        return entry_detail(session, entry, principal)


@blp.route("/entries/<int:entry_id>/no-contact")
class EntryNoContact(MethodView):
    @blp.response(200, NoContactCheckSchema)
    @_errors(404)
    def get(self, entry_id: int) -> Any:
        """按不见面审批规则核验实施清单，列出不满足的条件"""
        session = db_session()
        return entry_services.check_no_contact(
            session, entry_services.get_visible_entry(session, current_principal(), entry_id)
        )

    @blp.arguments(NoContactSchema)
    @blp.response(200, EntrySchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def put(self, body: dict[str, Any], entry_id: int) -> Any:
        """设置或取消不见面审批标记；不满足条件时拒绝并逐条说明"""
        principal = require_login()
        return entry_services.set_no_contact(db_session(), principal, entry_id, body["value"])


def entry_action(
    bp: Blueprint, url: str, name: str, summary: str, fn: Any, response: Any, schema: Any = None
) -> None:
    """Route ``POST url`` (with ``<int:entry_id>``) to ``fn(session, principal, entry_id[, reason])``:
    the lifecycle acts of an entry and of its revision are all this shape. ``schema`` (a body with
    ``reason``) makes the reason part of the call."""

    def post_plain(self: Any, entry_id: int) -> Any:
        return fn(db_session(), require_login(), entry_id)

    def post_reason(self: Any, body: dict[str, Any], entry_id: int) -> Any:
        return fn(db_session(), require_login(), entry_id, body.get("reason"))

    handler = post_reason if schema is not None else post_plain
    handler.__doc__ = summary
    handler = _errors(*WRITE_ERRORS)(handler)
    handler = bp.doc(security=BEARER)(handler)
    handler = bp.response(200, response)(handler)
    if schema is not None:
        handler = bp.arguments(type(f"{name}Body", (schema,), {}))(handler)
    bp.route(url)(type(name, (MethodView,), {"post": handler}))


def _lifecycle(path: str, name: str, summary: str, fn: Any, schema: Any = None) -> None:
    entry_action(blp, f"/entries/<int:entry_id>/{path}", name, summary, fn, EntrySchema, schema)


_lifecycle(
    "submit", "EntrySubmit", "提交审核：草稿 → 待审核（部门编辑/镇村经办）", entry_services.submit_entry
)
_lifecycle(
    "approve", "EntryApprove", "审核通过并发布：待审核 → 已发布（部门审核）", entry_services.approve_entry
)
_lifecycle(
    "reject", "EntryReject", "退回修改：待审核 → 草稿，须说明原因", entry_services.reject_entry, ReasonSchema
)
_lifecycle(
    "retire", "EntryRetire", "停用：已发布 → 已停用，须说明原因", entry_services.retire_entry, ReasonSchema
)
_lifecycle(
    "reopen",
    "EntryReopen",
    "重新打开修订：已发布/已停用 → 草稿",
    entry_services.reopen_entry,
    OptionalReasonSchema,
)


@blp.route("/entries/<int:entry_id>/withdraw-claim")
class EntryWithdrawClaim(MethodView):
    @blp.arguments(WithdrawClaimSchema)
    @blp.response(200, WithdrawnClaimSchema)
    @blp.doc(security=BEARER)
    @_errors(*WRITE_ERRORS)
    def post(self, body: dict[str, Any], entry_id: int) -> Any:
        """撤回认领：删除从未发布过的草稿认领（编辑人；记入审计），该事项可重新认领"""
        principal = require_login()
        return scope.withdraw_claim(db_session(), principal, entry_id, body.get("reason"))


@blp.route("/entries/<int:entry_id>/history")
class EntryHistory(MethodView):
    @blp.response(200, EntryVersionSchema(many=True))
    @blp.doc(security=BEARER)
    @_errors(401, 404)
    def get(self, entry_id: int) -> Any:
        """实施清单的全部历史版本（工作人员）"""
        principal = require_login()
        session = db_session()
        entry = entry_services.get_entry_in_work(session, principal, entry_id)
        return entry_services.entry_history(session, entry.id or 0)


@blp.route("/consistency")
class Consistency(MethodView):
    @blp.response(200, DriftSchema(many=True))
    @blp.doc(security=BEARER)
    @_errors(401)
    def get(self) -> Any:
        """三级四同一致性报告：名称、类型、依据、编码与上级（省级/市级）基本目录事项不一致的实施清单（工作人员）。

        对照的是导入的上级目录，而非本区可编辑的基本目录；
        未关联上级事项的实施清单无法对照，数量见 /consistency/coverage"""
        require_login()
        return consistency.consistency_report(db_session())


@blp.route("/consistency/coverage")
class ConsistencyCoverage(MethodView):
    @blp.response(200, CoverageSchema)
    @blp.doc(security=BEARER)
    @_errors(401)
    def get(self) -> Any:
        """三级四同可对照范围：已导入的上级目录（层级、文件、来源说明、事项数）。

        另给出可对照与无法对照（未关联上级事项）的实施清单数"""
        require_login()
        return consistency.coverage(db_session())


@blp.route("/no-contact-gaps")
class NoContactGaps(MethodView):
    @blp.response(200, NoContactGapReportSchema)
    @blp.doc(security=BEARER)
    @_errors(401)
    def get(self) -> Any:
        """在省级不见面审批标准清单上、但本区尚未实现不见面的已发布实施清单（工作人员）"""
        require_login()
        session = db_session()
        summary = upper.no_contact_list_summary(session)
        return {
            "list_items": summary["items"],
            "sources": summary["sources"],
            "gaps": upper.no_contact_gaps(session),
        }


def register(app: Flask, api: Any) -> None:
    from core.web import csrf

    csrf.exempt(blp)
    api.register_blueprint(blp)
