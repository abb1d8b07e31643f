"""Marshmallow schemas of the revision and review-settings API (web layer only).

The change body has the entry change payload shape ``{"fields": {...}, "materials": [...], ...}``.
Its contents are checked by the services (the same rules as ``update_entry``, Chinese messages
naming ``fields.promise_days`` or ``materials[0].name``), so the schema stays generic and a new
element or child list needs no change here.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, ValidationError, fields, validate, validates_schema

from catalog.entries import MAX_FEES, MAX_MATERIALS
from catalog.schemas import StrictSchema
from core.schemas import BaseSchema

MAX_ROWS = max(MAX_MATERIALS, MAX_FEES)


class RevisionOpenSchema(StrictSchema):
    reason = fields.String(
        required=True, validate=validate.Length(min=1, max=500), metadata={"description": "修订原因"}
    )


class RevisionChangeSchema(BaseSchema):
    """``fields`` are merged into the revision; each child list given replaces that list."""

    class Meta:
        unknown = INCLUDE  # further child lists ("steps", "faqs"...) are named and checked by the service

    fields_ = fields.Dict(
        keys=fields.String(validate=validate.Length(max=60)),
        data_key="fields",
        attribute="fields",
        load_default=dict,
        metadata={"description": "要素字段及新值（可含 no_contact 不见面审批标记）"},
    )
    materials = fields.List(fields.Dict(), validate=validate.Length(max=MAX_MATERIALS))
    fees = fields.List(fields.Dict(), validate=validate.Length(max=MAX_FEES))
    align = fields.Boolean(
        metadata={
            "description": "true：审核通过时按上级基本目录更新名称、事项类型、设定依据和编码（三级四同）"
        }
    )

    @validates_schema(pass_original=True)
    def lists_are_lists(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        if not isinstance(original, dict):
            return
        for key, value in original.items():
            if key in ("fields", "materials", "fees", "align"):
                continue
            if not isinstance(value, list) or len(value) > MAX_ROWS:
                raise ValidationError({key: [f"应为不超过 {MAX_ROWS} 项的列表"]})


class OptionalReasonBodySchema(StrictSchema):
    reason = fields.String(validate=validate.Length(max=500))


class RejectSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class RevisionSchema(BaseSchema):
    id = fields.Integer()
    entry_id = fields.Integer()
    base_version = fields.Integer()
    status = fields.String(
        metadata={
            "description": "draft 修订草稿、submitted 待审核、rejected 已退回、"
            "withdrawn 已撤回、approved 已发布"
        }
    )
    payload = fields.Dict()
    reason = fields.String()
    reject_reason = fields.String(allow_none=True)
    applied_version = fields.Integer(allow_none=True)
    created_by_name = fields.String()
    created_at = fields.DateTime()
    submitted_by_name = fields.String(allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    decided_by_name = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)


class RowChangeSchema(BaseSchema):
    kind = fields.String(metadata={"description": "added / removed / changed"})
    kind_label = fields.String()
    title = fields.String()
    fields_ = fields.Method("_fields", data_key="fields")

    def _fields(self, row: Any) -> list[dict[str, str]]:
        return [{"label": label, "old": old, "new": new} for label, old, new in row.fields]


class ChangeSchema(BaseSchema):
    key = fields.String()
    label = fields.String()
    old = fields.String()
    new = fields.String()
    rows = fields.List(fields.Nested(RowChangeSchema))


class ReviewSettingsSchema(BaseSchema):
    four_eyes = fields.Boolean()


class ReviewSettingsUpdateSchema(StrictSchema):
    four_eyes = fields.Boolean(required=True)
    reason = fields.String(validate=validate.Length(max=500))
