"""Marshmallow schemas of the reports API (web layer only)."""

from __future__ import annotations

from marshmallow import fields, validate

from core.schemas import BaseSchema


class MetricsQueryArgsSchema(BaseSchema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    as_of = fields.Date(load_default=None)


class CaseStatRowSchema(BaseSchema):
    task_code = fields.String(required=True, validate=validate.Length(min=1, max=31))
    month = fields.String(
        required=True, validate=validate.Length(min=6, max=7), metadata={"description": "YYYY-MM"}
    )
    received = fields.Integer(required=True, validate=validate.Range(min=0, max=10_000_000))
    online = fields.Integer(required=True, validate=validate.Range(min=0, max=10_000_000))
    finished = fields.Integer(required=True, validate=validate.Range(min=0, max=10_000_000))
    on_time = fields.Integer(required=True, validate=validate.Range(min=0, max=10_000_000))


class CaseStatsUploadSchema(BaseSchema):
    year = fields.Integer(required=True, validate=validate.Range(min=2000, max=2100))
    rows = fields.List(
        fields.Nested(CaseStatRowSchema), required=True, validate=validate.Length(min=1, max=50_000)
    )


class MetricsResponseSchema(BaseSchema):
    """Documentation of GET /api/v1/reports/metrics (the view returns plain JSON)."""

    year = fields.Integer(required=True)
    definitions_version = fields.String(required=True)
    as_of = fields.String(required=True, metadata={"description": "截止时刻（ISO 8601，北京时间）"})
    metrics = fields.Dict(
        keys=fields.String(), values=fields.Dict(), required=True,
        metadata={"description": "指标键 -> 分子、分母、事项编号等"},
    )


class CaseStatsResultSchema(BaseSchema):
    """Documentation of POST /api/v1/reports/case-stats."""

    rows = fields.Integer(required=True)
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
