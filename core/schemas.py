"""Schemas shared by every API blueprint (web layer only): the base schema and the one error shape.

``BaseSchema`` is what every schema of the project inherits: it turns marshmallow's English
messages (required, unknown field, wrong type, length, range, choices...) into Chinese, because the
``details`` of a 422 are read by people. Messages a schema states itself are kept as they are.

Every 4xx/5xx JSON body is ``{"code", "message", "details"}`` (core.app.error_response); the
OpenAPI document must say so, or clients and the fuzzer read flask-smorest's default
``{"code": int, "status", "message", "errors"}`` shape, which this API never sends.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

# marshmallow's default messages (as of marshmallow 4) -> Chinese. Keyed by the English text, so a
# message a schema sets itself is never touched; placeholders keep their names.
FIELD_MESSAGES = {
    "Missing data for required field.": "必填字段",
    "Field may not be null.": "不能为空值（null）",
    "Invalid value.": "取值无效",
    "Not a valid boolean.": "应为布尔值（true 或 false）",
    "Not a valid date.": "应为日期（YYYY-MM-DD）",
    '"{input}" cannot be formatted as a date.': "无法按日期格式输出",
    "Not a valid {obj_type}.": "日期或时间格式无效（应为 ISO 8601）",
    "Not a valid {awareness} {obj_type}.": "日期时间的时区信息不符合要求",
    '"{input}" cannot be formatted as a {obj_type}.': "无法按日期时间格式输出",
    "Special numeric values (nan or infinity) are not permitted.": "不允许 NaN 或无穷大",
    "Not a valid email address.": "应为有效的电子邮箱地址",
    "Must be one of: {choices}.": "取值应为以下之一：{choices}",
    "Not a valid integer.": "应为整数",
    "Not a valid list.": "应为列表（数组）",
    "Not a valid mapping type.": "应为对象（键值对）",
    "Invalid type.": "应为对象",
    "Not a valid number.": "应为数字",
    "Number too large.": "数值过大",
    "Not a valid string.": "应为字符串",
    "Not a valid utf-8 string.": "应为有效的 UTF-8 字符串",
    "Not a valid tuple.": "应为数组",
    "Not a valid URL.": "应为有效的网址",
    "Not a valid UUID.": "应为有效的 UUID",
    "Not a valid period of time.": "应为时长",
    "{input!r} cannot be formatted as a timedelta.": "无法按时长格式输出",
    "Invalid input.": "取值无效",
    "String does not match expected pattern.": "格式不符合要求",
    "One or more of the choices you made was not in: {choices}.": "所选值应在以下范围内：{choices}",
    "One or more of the choices you made was in: {values}.": "所选值不能包括：{values}",
    "Must be equal to {other}.": "应等于 {other}",
}
SCHEMA_MESSAGES = {"type": "应为 JSON 对象", "unknown": "未知字段"}
LENGTH_MESSAGES = {
    "message_min": "长度不能少于 {min}",
    "message_max": "长度不能超过 {max}",
    "message_all": "长度应在 {min} 到 {max} 之间",
    "message_equal": "长度应为 {equal}",
}


def _range_messages(rule: validate.Range) -> dict[str, str]:
    low = "大于等于" if rule.min_inclusive else "大于"
    high = "小于等于" if rule.max_inclusive else "小于"
    both = (
        "应在 {min} 到 {max} 之间"
        if rule.min_inclusive and rule.max_inclusive
        else f"应{low} {{min}} 且{high} {{max}}"
    )
    return {"message_min": f"应{low} {{min}}", "message_max": f"应{high} {{max}}", "message_all": both}


def _translate_validator(rule: Any) -> None:
    if isinstance(rule, validate.And):
        for inner in rule.validators:
            _translate_validator(inner)
    elif isinstance(rule, validate.Length) and rule.error is None:
        for attr, text in LENGTH_MESSAGES.items():
            setattr(rule, attr, text)
    elif isinstance(rule, validate.Range) and rule.error is None:
        for attr, text in _range_messages(rule).items():
            setattr(rule, attr, text)
    elif isinstance(getattr(rule, "error", None), str) and rule.error in FIELD_MESSAGES:
        rule.error = FIELD_MESSAGES[rule.error]


def translate_field(field: fields.Field[Any]) -> None:
    """Chinese default messages on ``field``, its validators and the fields inside it (lists, dicts)."""
    field.error_messages = {
        key: FIELD_MESSAGES.get(text, text) if isinstance(text, str) else text
        for key, text in field.error_messages.items()
    }
    for rule in field.validators:
        _translate_validator(rule)
    inner: list[fields.Field[Any] | None] = [getattr(field, "inner", None), getattr(field, "key_field", None),
                                            getattr(field, "value_field", None)]
    inner.extend(getattr(field, "tuple_fields", None) or [])
    for sub in inner:
        if isinstance(sub, fields.Field):
            translate_field(sub)


class BaseSchema(Schema):
    """The schema every API schema inherits: marshmallow's messages in Chinese."""

    error_messages = SCHEMA_MESSAGES

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        translate_field(field_obj)


class ErrorSchema(BaseSchema):
    code = fields.String(
        required=True, metadata={"description": "机器可读的错误代码，如 not_found、invalid、forbidden"}
    )
    message = fields.String(required=True, metadata={"description": "给用户看的中文说明"})
    details = fields.Dict(
        required=True,
        metadata={"description": "字段名 -> 错误消息列表；无字段错误时为空对象"},
    )

