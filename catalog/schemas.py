"""Marshmallow schemas of the catalogue API (web layer only).

Request schemas declare maximum lengths and ranges and reject unknown fields (marshmallow's
default RAISE), so bad input is a 422 naming the field before any service runs; the services
validate again (rules between fields, codes, permissions) for the pages and the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from marshmallow import RAISE, ValidationError, fields, pre_load, validate

from catalog import elements as el
from catalog.elements import DEPTH_LEVELS, HANDLE_FORMS
from catalog.entries import MAX_DAYS, MAX_FEE_FEN, MAX_FEES, MAX_MATERIALS, MAX_VISITS
from catalog.entry_elements import ELEMENTS, MATERIAL_ELEMENTS, MAX_COPIES, MAX_FAQS, MAX_STEPS, Element
from catalog.models import (
    MATERIAL_FORMS,
    ONLINE_DEPTH,
    PROJECT_TYPES,
    RESULT_DELIVERY,
    TASK_TYPES,
    TIME_UNITS,
    EntryStatus,
)
from core.db import MAX_DB_ID
from core.schemas import BaseSchema

DIVISION_CODE = validate.Regexp(r"^\d{12}$", error="应为 12 位数字的统计用区划代码")
LEVEL_CODES = validate.OneOf(["4", "5", "6"], error="应为 4（县级）、5（镇街级）或 6（村社区级）")
USE_LEVELS_RE = validate.Regexp(r"^[1-6](,[1-6]){0,5}$", error="应为以逗号分隔的 1-6 层级代码，如 4,5")
CODE_LIST = validate.Regexp(r"^[0-9a-z,]{0,40}$", error="应为以逗号分隔的代码")
ID = validate.Range(min=1, max=MAX_DB_ID, error="应为有效的编号")


def _id(*, strict: bool = True, **kwargs: Any) -> fields.Integer:
    """An id: strict (a JSON number, not a string) in bodies; query strings are parsed."""
    return fields.Integer(strict=strict, validate=ID, **kwargs)


class StrictSchema(BaseSchema):
    class Meta:
        unknown = RAISE


# --------------------------------------------------------------------------- divisions


class DivisionSchema(BaseSchema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    kind = fields.String(allow_none=True)
    parent_code = fields.String(allow_none=True)


class DivisionQueryArgsSchema(BaseSchema):
    level = fields.String(validate=validate.OneOf(["province", "city", "county", "town", "village"]))
    parent_code = fields.String(validate=DIVISION_CODE)
    q = fields.String(validate=validate.Length(max=50))


# --------------------------------------------------------------------------- departments


class DepartmentSchema(BaseSchema):
    id = fields.Integer()
    name = fields.String()
    uscc = fields.String()
    uscc_warning = fields.String(allow_none=True)
    level = fields.String()
    division_code = fields.String()
    created_at = fields.DateTime()


class DepartmentCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    uscc = fields.String(
        required=True, validate=validate.Length(equal=18, error="统一社会信用代码应为 18 位")
    )
    level = fields.String(required=True, validate=LEVEL_CODES)
    division_code = fields.String(required=True, validate=DIVISION_CODE)


class DepartmentQueryArgsSchema(BaseSchema):
    division_code = fields.String(validate=DIVISION_CODE)
    level = fields.String(validate=LEVEL_CODES)
    q = fields.String(validate=validate.Length(max=50))


# --------------------------------------------------------------------------- basic items


class ItemSchema(BaseSchema):
    id = fields.Integer()
    code = fields.String()
    source_code = fields.String(allow_none=True)
    name = fields.String()
    task_type = fields.String()
    task_type_label = fields.Function(lambda i: TASK_TYPES.get(i.task_type, i.task_type))
    legal_basis = fields.String()
    use_levels = fields.String()
    county_only = fields.Boolean()
    competent_department_id = fields.Integer(allow_none=True)  # 主管部门; null = not recorded
    upper_item_id = fields.Integer(allow_none=True)  # the province/city item it implements
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ItemCreateSchema(StrictSchema):
    code = fields.String(
        required=True, validate=validate.Regexp(r"^[0-9A-Z]{12}$", error="基本编码应为 12 位数字或大写字母")
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    task_type = fields.String(required=True, validate=validate.OneOf(list(TASK_TYPES)))
    legal_basis = fields.String(load_default="", validate=validate.Length(max=20000))
    use_levels = fields.String(load_default="4", validate=USE_LEVELS_RE)
    county_only = fields.Boolean(load_default=False)
    source_code = fields.String(allow_none=True, validate=validate.Length(max=60))


class ItemUpdateSchema(StrictSchema):
    code = fields.String(
        validate=validate.Regexp(r"^[0-9A-Z]{12}$", error="基本编码应为 12 位数字或大写字母")
    )
    name = fields.String(validate=validate.Length(min=1, max=200))
    task_type = fields.String(validate=validate.OneOf(list(TASK_TYPES)))
    legal_basis = fields.String(validate=validate.Length(max=20000))
    use_levels = fields.String(validate=USE_LEVELS_RE)
    county_only = fields.Boolean()


class PageArgsSchema(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class ItemQueryArgsSchema(PageArgsSchema):
    q = fields.String(validate=validate.Length(max=100))
    competent_department_id = _id(strict=False)  # items whose 主管部门 is this department
    task_type = fields.String(validate=validate.OneOf(list(TASK_TYPES)))
    level = fields.String(validate=validate.OneOf(["1", "2", "3", "4", "5", "6"]))


class ItemPageSchema(BaseSchema):
    items = fields.List(fields.Nested(ItemSchema))
    total = fields.Integer()
    page = fields.Integer()
    limit = fields.Integer()


class ClaimSchema(StrictSchema):
    department_id = _id(required=True)
    division_code = fields.String(validate=DIVISION_CODE)
    # An administrator claiming an item for a department that is not its 主管部门 says why (audited).
    override_reason = fields.String(validate=validate.Length(min=1, max=500))


class CompetenceSchema(StrictSchema):
    department_id = _id(required=True, allow_none=True)


class DeclineSchema(ClaimSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


# --------------------------------------------------------------------------- entries


def _element_field(spec: Element) -> fields.Field[Any]:
    """The request field of one element of the national set: None (未填报) is always allowed, and
    every message names the element by its Chinese label."""
    label = el.FIELD_LABELS.get(spec.name) or el.MATERIAL_LABELS.get(spec.name, spec.name)
    doc = {"description": label}
    if spec.kind == "bool":
        return fields.Boolean(
            allow_none=True,
            metadata=doc,
            error_messages={"invalid": f"{label}应为 true、false 或 null（未填报）"},
        )
    if spec.kind == "attachment":
        return fields.Integer(
            strict=True,
            allow_none=True,
            validate=ID,
            metadata={"description": f"{label}：已上传文件的编号（POST /entries/{{id}}/attachments）"},
            error_messages={"invalid": f"{label}应为已上传文件的编号"},
        )
    choices = spec.choices or {}
    if spec.kind in ("code", "codes"):
        text = "、".join(f"{code} {name}" for code, name in choices.items())
        doc = {"description": f"{label}：{text}" + ("（可多选，逗号分隔）" if spec.kind == "codes" else "")}
    rule: validate.Validator = validate.Length(max=spec.max_len, error=f"{label}不能超过 {{max}} 个字符")
    if spec.kind == "code":
        rule = validate.OneOf(list(choices), error=f"{label}应为以下之一：{'、'.join(choices)}")
    return fields.String(
        allow_none=True, validate=rule, metadata=doc, error_messages={"invalid": f"{label}应为字符串"}
    )


def _element_schema(name: str, specs: tuple[Element, ...]) -> type[StrictSchema]:
    """A strict schema with one field per element (the element list is the one definition)."""
    return type(name, (StrictSchema,), {spec.name: _element_field(spec) for spec in specs})


if TYPE_CHECKING:  # the checker sees a plain base class; the fields are made from the element list
    ElementUpdateFields = StrictSchema
    MaterialElementFields = StrictSchema
else:
    ElementUpdateFields = _element_schema("ElementUpdateFields", ELEMENTS)
    MaterialElementFields = _element_schema("MaterialElementFields", MATERIAL_ELEMENTS)


class MaterialSchema(MaterialElementFields):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    form = fields.String(load_default="paper", validate=validate.OneOf(list(MATERIAL_FORMS)))
    required = fields.Boolean(load_default=True)
    copies = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(
            min=1, max=MAX_COPIES, error=f"份数应为 1 到 {MAX_COPIES} 的整数（未填报用 null）"
        ),
    )
    licence_type_code = fields.String(allow_none=True, validate=validate.Length(equal=21))
    notes = fields.String(allow_none=True, validate=validate.Length(max=500))


class FeeSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    amount_fen = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=MAX_FEE_FEN))
    basis = fields.String(load_default="", validate=validate.Length(max=500))
    reducible = fields.Boolean(load_default=False)


# 三级四同: these come from the 基本目录 item (align_entry copies them), never from the department.
INHERITED_FIELDS = ("name", "task_type", "legal_basis", "catalog_code", "task_code")
INHERITED_MESSAGE = "继承自基本目录，不可修改"


class StepSchema(StrictSchema):
    name = fields.String(
        required=True, validate=validate.Length(min=1, max=100, error="办理环节名称应为 1 到 100 个字")
    )
    post = fields.String(
        allow_none=True, validate=validate.Length(max=100, error="承办岗位不能超过 100 个字")
    )
    days = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=0, max=MAX_DAYS, error="环节时限应在 0 到 {max} 之间"),
    )
    unit = fields.String(
        allow_none=True,
        validate=validate.OneOf(list(TIME_UNITS), error="环节时限单位应为 working 或 calendar"),
    )


class FaqSchema(StrictSchema):
    question = fields.String(
        required=True, validate=validate.Length(min=1, max=500, error="问题应为 1 到 500 个字")
    )
    answer = fields.String(
        required=True, validate=validate.Length(min=1, max=2000, error="解答应为 1 到 2000 个字")
    )


class EntryUpdateSchema(ElementUpdateFields):
    @pre_load
    def refuse_inherited_fields(self, data: Any, **kwargs: Any) -> Any:
        """An inherited field is a rule, not an unknown field: say why it is refused."""
        if isinstance(data, dict):
            found = [key for key in INHERITED_FIELDS if key in data]
            if found:
                raise ValidationError({key: [INHERITED_MESSAGE] for key in found})
        return data

    accept_conditions = fields.String(allow_none=True, validate=validate.Length(max=5000))
    anticipate_days = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_DAYS)
    )
    anticipate_unit = fields.String(allow_none=True, validate=validate.OneOf(list(TIME_UNITS)))
    promise_days = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_DAYS))
    promise_unit = fields.String(allow_none=True, validate=validate.OneOf(list(TIME_UNITS)))
    project_type = fields.String(allow_none=True, validate=validate.OneOf(list(PROJECT_TYPES)))
    visits = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_VISITS))
    visits_reason = fields.String(allow_none=True, validate=validate.Length(max=500))
    online_depth = fields.String(
        validate=[CODE_LIST, validate.Length(max=20)],
        metadata={
            "description": "网上办理深度代码，逗号分隔："
            + "、".join(f"{k} {v}" for k, v in ONLINE_DEPTH.items())
        },
    )
    online_url = fields.String(allow_none=True, validate=validate.Length(max=500))
    result_delivery = fields.String(
        allow_none=True,
        validate=[CODE_LIST, validate.Length(max=40)],
        metadata={
            "description": "结果送达方式，逗号分隔："
            + "、".join(f"{k} {v}" for k, v in RESULT_DELIVERY.items())
        },
    )
    window_address = fields.String(allow_none=True, validate=validate.Length(max=300))
    opening_hours = fields.String(allow_none=True, validate=validate.Length(max=200))
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    keywords = fields.String(validate=validate.Length(max=500))
    not_applicable_reason = fields.String(allow_none=True, validate=validate.Length(max=500))
    handle_forms = fields.String(
        allow_none=True,
        validate=[CODE_LIST, validate.Length(max=60)],
        metadata={
            "description": "办理形式，逗号分隔（null 为未填报）："
            + "、".join(f"{k} {v}" for k, v in HANDLE_FORMS.items())
        },
    )
    meeting_step = fields.String(
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "部分不见面：唯一一次见面所在的环节"},
    )
    tolerant_acceptance = fields.Boolean(
        allow_none=True, metadata={"description": "容缺受理（null 为未填报）"}
    )
    materials = fields.List(fields.Nested(MaterialSchema), validate=validate.Length(max=MAX_MATERIALS))
    fees = fields.List(fields.Nested(FeeSchema), validate=validate.Length(max=MAX_FEES))
    steps = fields.List(fields.Nested(StepSchema), validate=validate.Length(max=MAX_STEPS))
    faqs = fields.List(fields.Nested(FaqSchema), validate=validate.Length(max=MAX_FAQS))


class AttachmentUploadSchema(StrictSchema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=255))
    content_base64 = fields.String(
        required=True,
        validate=validate.Length(min=1, max=7_100_000),
        metadata={"description": "文件内容（Base64）；PDF、Word、Excel、JPG、PNG，不超过 5 MB"},
    )


class AttachmentSchema(BaseSchema):
    id = fields.Integer()
    entry_id = fields.Integer()
    filename = fields.String()
    kind = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    created_at = fields.DateTime()
    url = fields.Function(lambda a: f"/files/{a.id}")


class NoContactSchema(StrictSchema):
    value = fields.Boolean(required=True)


class ReasonSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class OptionalReasonSchema(StrictSchema):
    reason = fields.String(validate=validate.Length(max=500))


class EntryQueryArgsSchema(PageArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in EntryStatus]))
    department_id = _id(strict=False)
    division_code = fields.String(validate=DIVISION_CODE)
    level = fields.String(validate=LEVEL_CODES)
    task_type = fields.String(validate=validate.OneOf(list(TASK_TYPES)))
    no_contact = fields.Boolean()
    depth_level = fields.Integer(validate=validate.OneOf(list(DEPTH_LEVELS)))
    item_id = _id(strict=False)
    q = fields.String(validate=validate.Length(max=100))
    # This division and every division under it (a town and its villages): "全部" of a town.
    under_division = fields.String(validate=DIVISION_CODE)


class MaterialOutSchema(BaseSchema):
    name = fields.String()
    form = fields.String()
    required = fields.Boolean()
    copies = fields.Integer(allow_none=True)
    source_channel = fields.String(allow_none=True)
    original = fields.String(allow_none=True)
    accept_standard = fields.String(allow_none=True)
    basis = fields.String(allow_none=True)
    blank_form = fields.Integer(allow_none=True)
    sample = fields.Integer(allow_none=True)
    licence_type_code = fields.String(allow_none=True)
    notes = fields.String(allow_none=True)


class FeeOutSchema(BaseSchema):
    name = fields.String()
    amount_fen = fields.Integer()
    basis = fields.String()
    reducible = fields.Boolean()


class EntrySchema(BaseSchema):
    id = fields.Integer()
    task_code = fields.String()
    item_id = fields.Integer()
    department_id = fields.Integer()
    level = fields.String()
    division_code = fields.String()
    name = fields.String()
    task_type = fields.String()
    legal_basis = fields.String()
    catalog_code = fields.String()
    applicable = fields.Boolean()
    not_applicable_reason = fields.String(allow_none=True)
    status = fields.String()
    version = fields.Integer()
    accept_conditions = fields.String(allow_none=True)
    anticipate_days = fields.Integer(allow_none=True)
    anticipate_unit = fields.String(allow_none=True)
    promise_days = fields.Integer(allow_none=True)
    promise_unit = fields.String(allow_none=True)
    project_type = fields.String(allow_none=True)
    visits = fields.Integer(allow_none=True)
    visits_reason = fields.String(allow_none=True)
    online_depth = fields.String()
    online_url = fields.String(allow_none=True)
    result_delivery = fields.String(allow_none=True)
    window_address = fields.String(allow_none=True)
    opening_hours = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    keywords = fields.String()
    no_contact = fields.Boolean()
    subject_nature = fields.String(allow_none=True)
    entrusted_department = fields.String(allow_none=True)
    joint_bodies = fields.String(allow_none=True)
    power_source = fields.String(allow_none=True)
    handle_item = fields.String(allow_none=True)
    service_objects = fields.String(allow_none=True)
    special_procedure = fields.String(allow_none=True)
    anticipate_explain = fields.String(allow_none=True)
    promise_explain = fields.String(allow_none=True)
    charges = fields.Boolean(allow_none=True)
    in_hall = fields.Boolean(allow_none=True)
    handle_area = fields.String(allow_none=True)
    quantity_limit = fields.String(allow_none=True)
    result_type = fields.String(allow_none=True)
    result_name = fields.String(allow_none=True)
    result_sample = fields.Integer(allow_none=True)
    complaint_phone = fields.String(allow_none=True)
    review_channel = fields.String(allow_none=True)
    litigation_channel = fields.String(allow_none=True)
    mobile_url = fields.String(allow_none=True)
    pay_online = fields.Boolean(allow_none=True)
    demo_content = fields.Boolean()
    handle_forms = fields.String(allow_none=True)
    meeting_step = fields.String(allow_none=True)
    tolerant_acceptance = fields.Boolean(allow_none=True)
    no_contact_class = fields.String(
        allow_none=True, metadata={"description": "不见面审批类别，按规则判定：full / partial / none"}
    )
    depth_level = fields.Integer(allow_none=True, metadata={"description": "网上办理深度等级 1–4（Ⅰ–Ⅳ）"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)


class NoContactCheckSchema(BaseSchema):
    ok = fields.Boolean()
    klass = fields.String(data_key="class", metadata={"description": "full / partial / none"})
    failures = fields.List(fields.String(), metadata={"description": "未达到全程不见面的条件"})
    partial_failures = fields.List(fields.String(), metadata={"description": "未达到部分不见面的条件"})


class EntryDetailSchema(EntrySchema):
    department = fields.Nested(DepartmentSchema)
    materials = fields.List(fields.Nested(MaterialOutSchema))
    fees = fields.List(fields.Nested(FeeOutSchema))
    steps = fields.List(fields.Nested(StepSchema))
    faqs = fields.List(fields.Nested(FaqSchema))
    attachments = fields.List(fields.Nested(AttachmentSchema))
    no_contact_check = fields.Nested(NoContactCheckSchema)


class EntryPageSchema(BaseSchema):
    items = fields.List(fields.Nested(EntrySchema))
    total = fields.Integer()
    page = fields.Integer()
    limit = fields.Integer()


class EntryVersionSchema(BaseSchema):
    id = fields.Integer()
    version = fields.Integer()
    status = fields.String()
    snapshot = fields.Dict()
    actor_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class DriftSchema(BaseSchema):
    entry_id = fields.Integer()
    task_code = fields.String()
    department_id = fields.Integer()
    status = fields.String()
    fields_ = fields.Dict(data_key="fields", attribute="fields")
    upper_level = fields.String(allow_none=True)
    upper_code = fields.String(allow_none=True)


class UpperSourceSchema(BaseSchema):
    file = fields.String()
    provenance = fields.String(allow_none=True)
    items = fields.Integer()


class UpperLevelCoverageSchema(BaseSchema):
    level = fields.String()
    label = fields.String()
    items = fields.Integer()
    sources = fields.List(fields.Nested(UpperSourceSchema))


class CoverageSchema(BaseSchema):
    levels = fields.List(fields.Nested(UpperLevelCoverageSchema))
    entries_checked = fields.Integer()
    entries_unchecked = fields.Integer()


class NoContactGapSchema(BaseSchema):
    entry_id = fields.Integer()
    task_code = fields.String()
    name = fields.String()
    department_id = fields.Integer()
    division_code = fields.String()
    list_code = fields.String()
    list_name = fields.String()


class NoContactGapReportSchema(BaseSchema):
    list_items = fields.Integer()
    sources = fields.List(fields.Dict())
    gaps = fields.List(fields.Nested(NoContactGapSchema))


class WithdrawClaimSchema(OptionalReasonSchema):
    pass


class WithdrawnClaimSchema(BaseSchema):
    task_code = fields.String()
    item_id = fields.Integer()
    department_id = fields.Integer()
