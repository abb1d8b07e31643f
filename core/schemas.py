"""Schemas shared by every API blueprint (web layer only): the one error shape.

Every 4xx/5xx JSON body is ``{"code", "message", "details"}`` (core.app.error_response); the
OpenAPI document must say so, or clients and the fuzzer read flask-smorest's default
``{"code": int, "status", "message", "errors"}`` shape, which this API never sends.
"""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorSchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "机器可读的错误代码，如 not_found、invalid、forbidden"}
    )
    message = fields.String(required=True, metadata={"description": "给用户看的中文说明"})
    details = fields.Dict(
        required=True,
        metadata={"description": "字段名 -> 错误消息列表；无字段错误时为空对象"},
    )

