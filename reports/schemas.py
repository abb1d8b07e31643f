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
        keys=fields.String(),
        values=fields.Dict(),
        required=True,
        metadata={"description": "指标键 -> 分子、分母、事项编号等"},
    )


class CaseStatsResultSchema(BaseSchema):
    """Documentation of POST /api/v1/reports/case-stats."""

    rows = fields.Integer(required=True)
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)


class CaseSpecialProcedureSchema(BaseSchema):
    """特别程序: its days are not counted in the time limit; no end date while it runs."""

    kind = fields.String(
        load_default=None, validate=validate.Length(max=40), metadata={"description": "种类"}
    )
    start_date = fields.Date(required=True)
    end_date = fields.Date(load_default=None)


class CaseStepSchema(BaseSchema):
    """办理环节 (up_pro_process)."""

    action = fields.String(required=True, validate=validate.Length(min=1, max=100))
    start_date = fields.Date(required=True)
    end_date = fields.Date(load_default=None)


class CaseSchema(BaseSchema):
    """One 办件 after the national tables: acceptance, steps, special procedures and result.

    ``promise_date`` may be left out: it is then computed from the entry's 承诺时限 on the working-day
    calendar. Leaving out ``special_procedures`` or ``steps`` keeps those already stored; an empty list
    clears them.
    """

    project_no = fields.String(required=True, validate=validate.Length(min=1, max=64))
    task_code = fields.String(required=True, validate=validate.Length(min=1, max=31))
    apply_date = fields.Date(load_default=None)
    accept_date = fields.Date(required=True)
    promise_date = fields.Date(load_default=None)
    applicant_type = fields.String(load_default=None, validate=validate.OneOf(["person", "legal", "other"]))
    channel = fields.String(required=True, validate=validate.OneOf(["online", "window"]))
    result_date = fields.Date(load_default=None)
    result_type = fields.String(
        load_default=None,
        validate=validate.OneOf(["approved", "refused", "transferred", "withdrawn", "other"]),
    )
    special_procedures = fields.List(
        fields.Nested(CaseSpecialProcedureSchema), validate=validate.Length(max=50)
    )
    steps = fields.List(fields.Nested(CaseStepSchema), validate=validate.Length(max=200))


class CaseBatchSchema(BaseSchema):
    cases = fields.List(fields.Nested(CaseSchema), required=True, validate=validate.Length(min=1, max=10_000))


class CaseImportResultSchema(BaseSchema):
    """Documentation of POST /api/v1/cases and /api/v1/cases/batch."""

    rows = fields.Integer(required=True)
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)


class NarrativeSchema(BaseSchema):
    key = fields.String(required=True)
    title = fields.String(required=True, metadata={"description": "报告中的位置"})
    text = fields.String(required=True, metadata={"description": "文字，可含 {占位符}"})
    default = fields.String(required=True, metadata={"description": "默认文字"})
    edited = fields.Boolean(required=True, metadata={"description": "false 表示仍为默认文字"})


class NarrativeListSchema(BaseSchema):
    year = fields.Integer(required=True)
    form = fields.String(
        required=True, metadata={"description": "报告格式：2021（国办公开办函〔2021〕30号）或 2008"}
    )
    blocks = fields.List(fields.Nested(NarrativeSchema), required=True)
    placeholders = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "占位符及其含义"},
    )


class NarrativeUpdateSchema(BaseSchema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=10_000))


class EnteredFigureSchema(BaseSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    value = fields.String(allow_none=True, required=True)
    unit = fields.String(required=True)
    lower_bound = fields.Boolean(required=True, metadata={"description": "true 表示“余/多”（下限）"})


class EnteredFigureListSchema(BaseSchema):
    year = fields.Integer(required=True)
    figures = fields.List(fields.Nested(EnteredFigureSchema), required=True)


class EnteredFigureUpdateSchema(BaseSchema):
    value = fields.String(required=True, validate=validate.Length(min=1, max=200))
    unit = fields.String(load_default=None, validate=validate.Length(max=20))
    lower_bound = fields.Boolean(load_default=False)
