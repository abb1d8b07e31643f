"""User and API token administration over the API (/api/v1/users, /api/v1/tokens), administrators only.

A thin layer over core.users, the same services the admin pages and `flask catalog create-user`
call; each write is audited there with the caller as the actor. Secrets are returned once: a
generated password when none was given, and the plain token when it is issued.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import RAISE, fields, validate
from sqlmodel import col, select

from core import users
from core.auth import ApiToken, Role, User
from core.db import MAX_DB_ID
from core.schemas import BaseSchema, ErrorSchema
from core.web import db_session, require_admin

blp = Blueprint("users_api", __name__, url_prefix="/api/v1",
                description="用户与 API 令牌管理（区级管理员）")
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
ERRORS = {401: "未登录或令牌无效", 403: "仅区级管理员", 404: "用户或令牌不存在",
          409: "用户名已存在或状态冲突", 422: "字段校验失败，details 指明字段"}


def _errors(*codes: int) -> Any:
    def wrap(fn: Any) -> Any:
        for code in codes:
            fn = blp.alt_response(code, schema=ErrorSchema, description=ERRORS[code])(fn)
        return fn

    return wrap


class UserSchema(BaseSchema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    department_id = fields.Integer(allow_none=True)
    division_code = fields.String(allow_none=True)
    is_active = fields.Boolean()


class UserCreateSchema(BaseSchema):
    class Meta:
        unknown = RAISE

    username = fields.String(required=True, validate=validate.Length(max=60))
    display_name = fields.String(required=True, validate=validate.Length(max=users.MAX_DISPLAY_NAME))
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    password = fields.String(validate=validate.Length(max=users.MAX_PASSWORD),
                             metadata={"description": "省略时生成随机密码，只在本次响应中返回"})
    department_id = fields.Integer(strict=True, allow_none=True,
                                   validate=validate.Range(min=1, max=MAX_DB_ID))
    division_code = fields.String(allow_none=True, validate=validate.Regexp(r"^\d{12}$"))


class UserCreatedSchema(BaseSchema):
    user = fields.Nested(UserSchema)
    password = fields.String(allow_none=True, metadata={"description": "生成的初始密码（仅此一次）"})


class ActiveSchema(BaseSchema):
    class Meta:
        unknown = RAISE

    value = fields.Boolean(required=True, metadata={"description": "true 启用，false 停用"})


class ApiTokenCreateSchema(BaseSchema):
    class Meta:
        unknown = RAISE

    name = fields.String(load_default="", validate=validate.Length(max=users.MAX_TOKEN_NAME))


class ApiTokenSchema(BaseSchema):
    id = fields.Integer()
    user_id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class ApiTokenIssuedSchema(ApiTokenSchema):
    token = fields.String(metadata={"description": "令牌明文（仅此一次，不再保存）"})


@blp.route("/users")
class Users(MethodView):
    @blp.response(200, UserSchema(many=True))
    @blp.doc(security=BEARER)
    @_errors(401, 403)
    def get(self) -> Any:
        """工作人员账号列表"""
        require_admin()
        return list(db_session().exec(select(User).order_by(col(User.id))))

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserCreatedSchema)
    @blp.doc(security=BEARER)
    @_errors(401, 403, 409, 422)
    def post(self, body: dict[str, Any]) -> Any:
        """创建工作人员账号（审计记录操作人）"""
        actor = require_admin()
        user, generated = users.create_user(db_session(), actor, users.NewUser(**body))
        return {"user": user, "password": generated}


@blp.route("/users/<int:user_id>/active")
class UserActive(MethodView):
    @blp.arguments(ActiveSchema)
    @blp.response(200, UserSchema)
    @blp.doc(security=BEARER)
    @_errors(401, 403, 404, 409, 422)
    def put(self, body: dict[str, Any], user_id: int) -> Any:
        """启用或停用账号（不能停用自己）"""
        return users.set_user_active(db_session(), require_admin(), user_id, body["value"])


@blp.route("/users/<int:user_id>/tokens")
class UserTokens(MethodView):
    @blp.response(200, ApiTokenSchema(many=True))
    @blp.doc(security=BEARER)
    @_errors(401, 403)
    def get(self, user_id: int) -> Any:
        """某账号的 API 令牌（只含前缀）"""
        require_admin()
        return list(db_session().exec(select(ApiToken).where(ApiToken.user_id == user_id)
                                      .order_by(col(ApiToken.id))))

    @blp.arguments(ApiTokenCreateSchema)
    @blp.response(201, ApiTokenIssuedSchema)
    @blp.doc(security=BEARER)
    @_errors(401, 403, 404, 422)
    def post(self, body: dict[str, Any], user_id: int) -> Any:
        """为账号签发 API 令牌（明文只返回这一次）"""
        token, plain = users.issue_token(db_session(), require_admin(), user_id, body["name"])
        return {"id": token.id, "user_id": token.user_id, "name": token.name, "prefix": token.prefix,
                "created_at": token.created_at, "revoked_at": token.revoked_at, "token": plain}


@blp.route("/tokens/<int:token_id>/revoke")
class TokenRevoke(MethodView):
    @blp.response(200, ApiTokenSchema)
    @blp.doc(security=BEARER)
    @_errors(401, 403, 404)
    def post(self, token_id: int) -> Any:
        """吊销 API 令牌"""
        return users.revoke_token(db_session(), require_admin(), token_id)


def register(app: Flask, api: Any) -> None:
    from core.web import csrf

    csrf.exempt(blp)
    api.register_blueprint(blp)
