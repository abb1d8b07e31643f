"""marshmallow schemas of the licence API (web layer only). Holder data is masked unless asked for."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from core.schemas import BaseSchema
from licenses.masking import face_schema_of, mask_code, mask_face, mask_name
from licenses.models import AUTHORITY_LEVELS, CATEGORIES, FACE_FIELD_TYPES, REASON_CATEGORIES, LicenceStatus


class FaceFieldSchema(BaseSchema):
    key = fields.String(required=True, metadata={"description": "字段键，小写字母开头"})
    label = fields.String(required=True, metadata={"description": "字段名称"})
    type = fields.String(load_default="string", validate=validate.OneOf(FACE_FIELD_TYPES))
    required = fields.Boolean(load_default=False)
    max_length = fields.Integer(validate=validate.Range(1, 5000))
    choices = fields.List(fields.String())
    for_ = fields.String(
        data_key="for",
        attribute="for",
        validate=validate.OneOf(["111", "001"]),
        metadata={"description": "仅适用于该类持证主体（111 自然人 / 001 法人和其他组织）"},
    )


class LicenceTypeSchema(BaseSchema):
    code = fields.String(
        required=True, metadata={"description": "证照类型代码（定义机构统一社会信用代码 + 3 位）"}
    )
    name = fields.String(required=True, validate=validate.Length(1, 200))
    authority_name = fields.String(load_default="")
    authority_code = fields.String(dump_only=True)
    authority_level = fields.String(load_default="区县级", validate=validate.OneOf(AUTHORITY_LEVELS))
    holder_code_type = fields.String(
        required=True,
        validate=validate.OneOf(["111", "001", "any"]),
        metadata={"description": "111 公民身份号码 / 001 统一社会信用代码 / any 二者皆可"},
    )
    category = fields.String(load_default="证照", validate=validate.OneOf(CATEGORIES))
    validity_years = fields.Integer(
        allow_none=True,
        load_default=None,
        validate=validate.Range(1, 100),
        metadata={"description": "有效年限；空为长期有效"},
    )
    face_schema = fields.List(fields.Dict(), load_default=list, metadata={"description": "照面字段定义"})
    is_active = fields.Boolean(load_default=True)


class LicenceTypePatchSchema(BaseSchema):
    name = fields.String(validate=validate.Length(1, 200))
    authority_name = fields.String()
    authority_level = fields.String(validate=validate.OneOf(AUTHORITY_LEVELS))
    holder_code_type = fields.String(validate=validate.OneOf(["111", "001", "any"]))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    validity_years = fields.Integer(allow_none=True, validate=validate.Range(1, 100))
    face_schema = fields.List(fields.Dict())
    is_active = fields.Boolean()


class TypeEntrySchema(BaseSchema):
    task_code = fields.String(
        required=True, validate=validate.Length(31, 31), metadata={"description": "实施编码"}
    )
    role = fields.String(required=True, validate=validate.OneOf(["produces", "accepts"]))
    material_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    entry_id = fields.Integer(dump_only=True, allow_none=True)
    entry_name = fields.String(dump_only=True, allow_none=True)


class LicenceTypeDetailSchema(LicenceTypeSchema):
    entries = fields.List(fields.Nested(TypeEntrySchema), dump_only=True)


class IssueSchema(BaseSchema):
    type_code = fields.String(required=True, metadata={"description": "证照类型代码"})
    holder_name = fields.String(required=True, validate=validate.Length(1, 200))
    holder_code = fields.String(required=True, metadata={"description": "公民身份号码或统一社会信用代码"})
    holder_code_type = fields.String(validate=validate.OneOf(["111", "001"]))
    number = fields.String(
        validate=validate.Length(1, 100), metadata={"description": "证照编号；缺省为流水号"}
    )
    issue_date = fields.Date()
    valid_from = fields.Date()
    valid_to = fields.Date(allow_none=True)
    area_code = fields.String(metadata={"description": "管辖属地 6 位行政区划代码"})
    face = fields.Dict(load_default=dict, metadata={"description": "照面信息，键须在证照类型的字段定义中"})
    serial = fields.String(metadata={"description": "流水号（可选，缺省自动生成）"})
    task_code = fields.String(
        validate=validate.Length(31, 31),
        metadata={"description": "据以颁发的办理事项实施编码；本部门只有一个产生该证照的事项时可省略"},
    )


class AmendSchema(BaseSchema):
    holder_name = fields.String(validate=validate.Length(1, 200))
    number = fields.String(validate=validate.Length(1, 100))
    valid_from = fields.Date()
    valid_to = fields.Date(allow_none=True)
    area_code = fields.String()
    face = fields.Dict()
    reason = fields.String(validate=validate.Length(max=500))


STATUS_CHOICES = [s.value for s in LicenceStatus]
CHANGE_TARGETS = [s.value for s in LicenceStatus if s != LicenceStatus.SUPERSEDED]


class ReasonSchema(BaseSchema):
    reason = fields.String(
        required=True, validate=validate.Length(1, 500), metadata={"description": "内部原因，不公开"}
    )
    category = fields.String(metadata={"description": "公开的原因类别（见 docs/licences.md）"})
    effective_date = fields.Date(metadata={"description": "生效日期，缺省为今天；不早于颁发日期、不晚于今天"})


class OptionalReasonSchema(BaseSchema):
    reason = fields.String(validate=validate.Length(max=500))
    effective_date = fields.Date()


class StatusChangeSchema(BaseSchema):
    status = fields.String(
        required=True,
        validate=validate.OneOf(CHANGE_TARGETS),
        metadata={
            "description": "suspended 暂扣 / valid 恢复 / cancelled 注销 / revoked 吊销 / "
            "withdrawn 撤销 / void 挂失作废"
        },
    )
    category = fields.String(metadata={"description": "公开的原因类别（按状态固定的列表）"})
    effective_date = fields.Date(metadata={"description": "生效日期，缺省为今天"})
    reason = fields.String(validate=validate.Length(max=500), metadata={"description": "内部原因，不公开"})


class LicenceQueryArgsSchema(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, 10_000))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    type_code = fields.String()
    status = fields.String(validate=validate.OneOf(STATUS_CHOICES))
    q = fields.String(metadata={"description": "证照编号、标识或流水号"})
    all_versions = fields.Boolean(load_default=False)


class LookupQueryArgsSchema(BaseSchema):
    holder_code = fields.String(required=True)
    type_code = fields.String(required=True)
    authorisation_id = fields.Integer(
        validate=validate.Range(1, 2**31 - 1), metadata={"description": "持证人用证授权编号（必需）"}
    )


class FullReadArgsSchema(BaseSchema):
    authorisation_id = fields.Integer(
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "非颁发部门读取时必需：持证人用证授权编号"},
    )


class AuthorisationSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    holder_code = fields.String(required=True, metadata={"description": "持证主体代码"})
    type_codes = fields.List(
        fields.String(), required=True, metadata={"description": "授权使用的证照类型代码"}
    )
    case_number = fields.String(required=True, metadata={"description": "办件编号"})
    task_code = fields.String(required=True, metadata={"description": "本部门办理事项的实施编码"})
    valid_until = fields.Date(required=True, metadata={"description": "授权有效期截止日（含当日）"})
    method = fields.String(
        required=True, metadata={"description": "signed_form 书面授权 / online_consent 线上授权"}
    )
    revoked_at = fields.DateTime(dump_only=True, metadata={"description": "撤回时间；未撤回为空"})
    revoked_via = fields.String(
        dump_only=True,
        metadata={"description": "holder 持证人撤回 / department 登记授权的部门撤回；未撤回为空"},
    )


class WithdrawSchema(BaseSchema):
    reason = fields.String(
        validate=validate.Length(max=500), metadata={"description": "撤回原因（内部记录）"}
    )


def licence_dict(licence: Any, *, full: bool = False, effective: str | None = None) -> dict[str, Any]:
    """A licence for the API; holder name and code, and other people's names on the face, masked unless
    ``full`` (an audited read)."""
    return {
        "id": licence.id,
        "identifier": licence.identifier,
        "type_code": licence.type_code,
        "type_name": licence.type_name,
        "number": licence.number,
        "version": licence.version,
        "holder_name": licence.holder_name
        if full
        else mask_name(licence.holder_name, licence.holder_code_type),
        "holder_code": licence.holder_code if full else mask_code(licence.holder_code),
        "holder_code_type": licence.holder_code_type,
        "issuer_name": licence.issuer_name,
        "issuer_code": licence.issuer_code,
        "issue_date": licence.issue_date.isoformat(),
        "valid_from": licence.valid_from.isoformat(),
        "valid_to": licence.valid_to.isoformat() if licence.valid_to else None,
        "area_code": licence.area_code,
        "face": licence.face if full else mask_face(licence.face, face_schema_of(licence)),
        "task_code": licence.task_code,
        "status": licence.status,
        "effective_status": effective or licence.status,
        "status_reason": licence.status_reason,
        "status_date": licence.status_date.isoformat() if licence.status_date else None,
        "status_category": licence.status_category,
        "status_category_label": REASON_CATEGORIES.get(licence.status, {}).get(licence.status_category or ""),
        "is_current": licence.is_current,
        "previous_id": licence.previous_id,
    }


class LicenceSchema(BaseSchema):
    """Response shape (documentation); the views build it with ``licence_dict``."""

    id = fields.Integer()
    identifier = fields.String(metadata={"description": "电子证照标识 (GB/T 36904)"})
    type_code = fields.String()
    type_name = fields.String()
    number = fields.String()
    version = fields.Integer()
    holder_name = fields.String(metadata={"description": "脱敏，完整信息见 /full"})
    holder_code = fields.String(metadata={"description": "脱敏，例如 321203********123X"})
    holder_code_type = fields.String()
    issuer_name = fields.String()
    issuer_code = fields.String()
    issue_date = fields.String()
    valid_from = fields.String()
    valid_to = fields.String(allow_none=True)
    area_code = fields.String()
    face = fields.Dict()
    task_code = fields.String(allow_none=True, metadata={"description": "据以颁发的办理事项实施编码"})
    status = fields.String()
    effective_status = fields.String()
    status_reason = fields.String(allow_none=True, metadata={"description": "内部原因（仅本部门可见）"})
    status_date = fields.String(allow_none=True, metadata={"description": "状态生效日期"})
    status_category = fields.String(allow_none=True)
    status_category_label = fields.String(allow_none=True, metadata={"description": "公开的原因类别"})
    is_current = fields.Boolean()
    previous_id = fields.Integer(allow_none=True)


class LicencePageSchema(BaseSchema):
    items = fields.List(fields.Nested(LicenceSchema))
    total = fields.Integer()
    page = fields.Integer()
    limit = fields.Integer()


class TokenSchema(BaseSchema):
    token = fields.String()
    url = fields.String()


class VerificationSchema(BaseSchema):
    valid = fields.Boolean()
    reason = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    status_label = fields.String(allow_none=True)
    status_date = fields.String(allow_none=True, metadata={"description": "状态生效日期"})
    category_label = fields.String(allow_none=True, metadata={"description": "公开的原因类别"})
    checked_at = fields.String(metadata={"description": "核验时间"})
    licence = fields.Dict(allow_none=True)
