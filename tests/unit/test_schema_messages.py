"""Every API schema speaks Chinese: marshmallow's English defaults never reach a 422's details."""

import importlib
import inspect

import pytest
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from core.schemas import FIELD_MESSAGES, BaseSchema

SCHEMA_MODULES = ["catalog.schemas", "catalog.search_api", "licenses.schemas", "licenses.sync_api",
                  "reports.schemas", "core.schemas"]


class Sample(BaseSchema):
    class Meta:
        unknown = RAISE

    count = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10))
    name = fields.String(validate=validate.Length(min=2, max=3))
    codes = fields.List(fields.Integer())
    email = fields.Email()
    kind = fields.String(validate=validate.OneOf(["a", "b"]))
    day = fields.Date()
    at = fields.DateTime()
    flag = fields.Boolean()
    own = fields.String(validate=validate.Length(max=1, error="自定义说明"))


def errors(data):
    with pytest.raises(ValidationError) as raised:
        Sample().load(data)
    return raised.value.messages


def test_required_unknown_and_type_messages_are_chinese():
    assert errors({}) == {"count": ["必填字段"]}
    got = errors({"count": "x", "codes": ["q"], "email": "no", "kind": "z", "day": "d", "at": "t",
                  "flag": "maybe", "extra": 1})
    assert got == {
        "count": ["应为整数"],
        "codes": {0: ["应为整数"]},
        "email": ["应为有效的电子邮箱地址"],
        "kind": ["取值应为以下之一：a, b"],
        "day": ["应为日期（YYYY-MM-DD）"],
        "at": ["日期或时间格式无效（应为 ISO 8601）"],
        "flag": ["应为布尔值（true 或 false）"],
        "extra": ["未知字段"],
    }
    assert errors([]) == {"_schema": ["应为 JSON 对象"]}


def test_length_and_range_messages_are_chinese_and_a_schemas_own_message_is_kept():
    assert errors({"count": 11, "name": "abcd", "own": "xy"}) == {
        "count": ["应在 0 到 10 之间"],
        "name": ["长度应在 2 到 3 之间"],
        "own": ["自定义说明"],
    }


def _schemas():
    for module_name in SCHEMA_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, Schema) and obj.__module__ == module_name:
                yield name, obj


@pytest.mark.parametrize(("name", "schema"), list(_schemas()))
def test_every_project_schema_inherits_the_chinese_base(name, schema):
    assert issubclass(schema, BaseSchema), name
    instance = schema()
    for field_name, field in instance.fields.items():
        english = [m for m in field.error_messages.values() if m in FIELD_MESSAGES]
        assert english == [], (name, field_name, english)
