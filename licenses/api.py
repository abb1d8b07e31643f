"""Licence API (/api/v1/licence-types, /api/v1/licences) and the public key and status-list documents.

Every endpoint checks department scope in licenses.grants; holder data is masked except on
``/full``, which only the issuing department may call and which is audited.
"""

from __future__ import annotations

import base64
import gzip
import io
from typing import Any, ClassVar

import segno
from flask import Flask, Response, current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from catalog.api import API_LIMIT
from core.db import Database
from core.schemas import ErrorSchema
from core.types import CHINA_TZ, utcnow
from core.web import db_session, limiter, require_login, settings
from licenses import authorisations, issuing, queries, verification
from licenses import types as licence_types
from licenses.masking import mask_code
from licenses.schemas import (
    AmendSchema,
    AuthorisationSchema,
    FullReadArgsSchema,
    IssueSchema,
    LicencePageSchema,
    LicenceQueryArgsSchema,
    LicenceSchema,
    LicenceTypeDetailSchema,
    LicenceTypePatchSchema,
    LicenceTypeSchema,
    LookupQueryArgsSchema,
    OptionalReasonSchema,
    ReasonSchema,
    StatusChangeSchema,
    TokenSchema,
    TypeEntrySchema,
    VerificationSchema,
    WithdrawSchema,
    licence_dict,
)
from licenses.signing import KeyStore, b64d, b64e, sign_document
from licenses.verification_cache import FactsCache
from licenses.verification_log import VerificationLog

blp = Blueprint(
    "licences_api", __name__, url_prefix="/api/v1", description="电子证照：证照目录、颁发、变更、吊销、核验"
)
public = Blueprint("licences_public", __name__, description="电子证照公开信息：公钥、状态列表")

VERIFY_LIMIT = "120 per minute"
limiter.limit(API_LIMIT)(blp)
limiter.limit(API_LIMIT)(public)


def _documented_errors(*codes: int) -> Any:
    """Document the {"code", "message", "details"} error responses an endpoint can give."""
    descriptions = {
        401: "未登录或令牌无效",
        403: "无权操作（非本部门或角色不符）",
        404: "对象不存在或不可见",
        409: "状态冲突或重复",
    }

    def wrap(fn: Any) -> Any:
        for code in codes:
            fn = blp.alt_response(code, schema=ErrorSchema, description=descriptions[code])(fn)
        return fn

    return wrap


SECURED_ERRORS = _documented_errors(401, 403, 404, 409)
ID = "<int:licence_id>"  # bounded to MAX_DB_ID by core.app.IdConverter


def keystore() -> KeyStore:
    ks: KeyStore = current_app.extensions["licences.keystore"]
    return ks


def keyring() -> verification.KeyRing:
    kr: verification.KeyRing = current_app.extensions["licences.keyring"]
    return kr


def verify_facts() -> FactsCache:
    cache: FactsCache = current_app.extensions["licences.verify_facts"]
    return cache


def verification_log() -> VerificationLog:
    writer: VerificationLog = current_app.extensions["licences.verification_log"]
    return writer


def verify_url(token: str) -> str:
    return f"{settings().public_base_url.rstrip('/')}/verify/{token}"


def qr_svg(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="svg", scale=4, border=2, title="电子证照核验二维码")
    return buf.getvalue()


def type_dict(session: Any, lt: Any, *, with_entries: bool = False) -> dict[str, Any]:
    out = {
        k: getattr(lt, k)
        for k in (
            "code",
            "name",
            "authority_name",
            "authority_code",
            "authority_level",
            "holder_code_type",
            "category",
            "validity_years",
            "face_schema",
            "is_active",
        )
    }
    if with_entries:
        out["entries"] = [e.__dict__ for e in licence_types.type_entries(session, lt)]
    return out


# ---------------------------------------------------------------- licence types


@blp.route("/licence-types")
class LicenceTypes(MethodView):
    @blp.response(200, LicenceTypeSchema(many=True))
    def get(self) -> Any:
        """证照目录（公开）"""
        return [type_dict(db_session(), lt) for lt in licence_types.list_licence_types(db_session())]

    @blp.arguments(LicenceTypeSchema)
    @blp.response(201, LicenceTypeSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def post(self, data: dict[str, Any]) -> Any:
        """新增证照类型（区级管理员）"""
        actor = require_login()
        return type_dict(db_session(), licence_types.create_licence_type(db_session(), actor, data))


@blp.route("/licence-types/<string(length=21):code>")
class LicenceTypeItem(MethodView):
    @blp.response(200, LicenceTypeDetailSchema)
    @_documented_errors(404)
    def get(self, code: str) -> Any:
        """证照类型详情，含产生和接受该证照的实施清单事项（公开）"""
        session = db_session()
        return type_dict(session, licence_types.get_licence_type(session, code), with_entries=True)

    @blp.arguments(LicenceTypePatchSchema)
    @blp.response(200, LicenceTypeSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def patch(self, data: dict[str, Any], code: str) -> Any:
        """修改证照类型（区级管理员；代码不可改）"""
        actor = require_login()
        return type_dict(db_session(), licence_types.update_licence_type(db_session(), actor, code, data))


@blp.route("/licence-types/<string(length=21):code>/entries")
class LicenceTypeEntries(MethodView):
    @blp.arguments(TypeEntrySchema)
    @blp.response(201, TypeEntrySchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def post(self, data: dict[str, Any], code: str) -> Any:
        """关联实施清单事项：produces 产生该证照 / accepts 以该证照替代申请材料（区级管理员）"""
        actor = require_login()
        link = licence_types.link_type_entry(db_session(), actor, code, **data)
        return {
            "task_code": link.task_code,
            "role": link.role,
            "material_name": link.material_name,
            "entry_id": link.entry_id,
        }


# ---------------------------------------------------------------- licences


@blp.route("/licences")
class Licences(MethodView):
    @blp.arguments(LicenceQueryArgsSchema, location="query")
    @blp.response(200, LicencePageSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def get(self, args: dict[str, Any]) -> Any:
        """本部门颁发的证照（管理员可见全部），持证信息脱敏"""
        actor = require_login()
        all_versions = args.pop("all_versions")
        page = queries.list_licences(db_session(), actor, current_only=not all_versions, **args)
        return {
            "items": [licence_dict(x, effective=queries.effective_status(x)) for x in page.items],
            "total": page.total,
            "page": page.page,
            "limit": page.limit,
        }

    @blp.arguments(IssueSchema)
    @blp.response(201, LicenceSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def post(self, data: dict[str, Any]) -> Any:
        """颁发电子证照（部门工作人员，颁发机构为本部门）"""
        actor = require_login()
        licence = issuing.issue_licence(
            db_session(), actor, data, default_area=settings().district_code, keystore=keystore()
        )
        return licence_dict(licence, effective=queries.effective_status(licence))


@blp.route(f"/licences/{ID}")
class LicenceItem(MethodView):
    @blp.response(200, LicenceSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def get(self, licence_id: int) -> Any:
        """证照详情（脱敏；颁发部门或管理员）"""
        licence = queries.get_licence(db_session(), require_login(), licence_id)
        return licence_dict(licence, effective=queries.effective_status(licence))


@blp.route(f"/licences/{ID}/full")
class LicenceFull(MethodView):
    @blp.arguments(FullReadArgsSchema, location="query")
    @blp.response(200, LicenceSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def get(self, args: dict[str, Any], licence_id: int) -> Any:
        """完整持证信息（颁发部门，或凭持证人有效授权的用证部门；每次读取均记入审计日志）"""
        licence = queries.read_full_licence(
            db_session(), require_login(), licence_id, authorisation_id=args.get("authorisation_id")
        )
        return licence_dict(licence, full=True, effective=queries.effective_status(licence))


@blp.route(f"/licences/{ID}/amend")
class LicenceAmend(MethodView):
    @blp.arguments(AmendSchema)
    @blp.response(201, LicenceSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def post(self, data: dict[str, Any], licence_id: int) -> Any:
        """变更：生成新版本（版本号 + 1），旧版本保留并作废"""
        reason = data.pop("reason", None)
        licence = issuing.amend_licence(db_session(), require_login(), licence_id, data, reason)
        return licence_dict(licence, effective=queries.effective_status(licence))


def _status_view(operation: str, schema: Any, doc: str) -> type[MethodView]:
    func = {
        "suspend": issuing.suspend_licence,
        "resume": issuing.resume_licence,
        "revoke": issuing.revoke_licence,
    }[operation]

    class StatusChange(MethodView):
        @blp.arguments(schema)
        @blp.response(200, LicenceSchema)
        @blp.doc(security=[{"bearerAuth": []}], summary=doc)
        @SECURED_ERRORS
        def post(self, data: dict[str, Any], licence_id: int) -> Any:
            licence = func(
                db_session(),
                require_login(),
                licence_id,
                data.get("reason"),
                category=data.get("category"),
                effective_date=data.get("effective_date"),
            )
            return licence_dict(licence, effective=queries.effective_status(licence))

    StatusChange.__name__ = f"Licence{operation.title()}"
    return StatusChange


blp.route(f"/licences/{ID}/suspend")(_status_view("suspend", ReasonSchema, "暂停（须填写原因）"))
blp.route(f"/licences/{ID}/resume")(_status_view("resume", OptionalReasonSchema, "恢复"))
blp.route(f"/licences/{ID}/revoke")(_status_view("revoke", ReasonSchema, "吊销（行政处罚；须填写原因）"))


@blp.route(f"/licences/{ID}/status")
class LicenceStatusChange(MethodView):
    @blp.arguments(StatusChangeSchema)
    @blp.response(200, LicenceSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def post(self, data: dict[str, Any], licence_id: int) -> Any:
        """状态变更：暂扣、恢复、注销、吊销、撤销、挂失/作废，附公开的原因类别、生效日期和内部原因"""
        licence = issuing.change_status(
            db_session(),
            require_login(),
            licence_id,
            to=data["status"],
            category=data.get("category"),
            effective_date=data.get("effective_date"),
            reason=data.get("reason"),
        )
        return licence_dict(licence, effective=queries.effective_status(licence))


@blp.route(f"/licences/{ID}/token")
class LicenceToken(MethodView):
    @blp.response(200, TokenSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def get(self, licence_id: int) -> Any:
        """签名核验令牌及核验网址（二维码内容）"""
        _licence, token = verification.licence_token(db_session(), require_login(), keystore(), licence_id)
        return {"token": token, "url": verify_url(token)}


@blp.route(f"/licences/{ID}/qr.svg")
class LicenceQr(MethodView):
    @blp.response(200, content_type="image/svg+xml")
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def get(self, licence_id: int) -> Any:
        """核验二维码（SVG）"""
        _licence, token = verification.licence_token(db_session(), require_login(), keystore(), licence_id)
        return Response(qr_svg(verify_url(token)), mimetype="image/svg+xml")


@blp.route("/licence-authorisations")
class LicenceAuthorisations(MethodView):
    @blp.arguments(AuthorisationSchema)
    @blp.response(201, AuthorisationSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def post(self, data: dict[str, Any]) -> Any:
        """登记持证人的用证授权（证照类型、办件编号、实施编码、有效期、授权方式）"""
        return authorisation_dict(authorisations.record_authorisation(db_session(), require_login(), data))


@blp.route("/licence-authorisations/<int:authorisation_id>/withdraw")
class LicenceAuthorisationWithdraw(MethodView):
    @blp.arguments(WithdrawSchema)
    @blp.response(200, AuthorisationSchema)
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def post(self, data: dict[str, Any], authorisation_id: int) -> Any:
        """撤回用证授权（登记该授权的部门；持证人在“我的用证记录”页面撤回）。撤回后凭此授权查询或调取证照一律拒绝"""
        auth = authorisations.withdraw_authorisation(
            db_session(), require_login(), authorisation_id, reason=data.get("reason")
        )
        return authorisation_dict(auth)


def authorisation_dict(auth: Any) -> dict[str, Any]:
    return {
        "id": auth.id,
        "holder_code": mask_code(auth.holder_code),
        "type_codes": auth.type_codes,
        "case_number": auth.case_number,
        "task_code": auth.task_code,
        "valid_until": auth.valid_until.astimezone(CHINA_TZ).date(),
        "method": auth.method,
        "revoked_at": auth.revoked_at,
        "revoked_via": auth.revoked_via,
    }


@blp.route("/licences/lookup")
class LicenceLookup(MethodView):
    @blp.arguments(LookupQueryArgsSchema, location="query")
    @blp.response(200, LicenceSchema(many=True))
    @blp.doc(security=[{"bearerAuth": []}])
    @SECURED_ERRORS
    def get(self, args: dict[str, Any]) -> Any:
        """查询申请人某类有效证照（证照联办、免提交；须持证人有效授权，每次使用记入用证记录和审计日志）"""
        rows = queries.lookup_licences(db_session(), require_login(), **args)
        return [licence_dict(x, effective=queries.effective_status(x)) for x in rows]


@blp.route("/licences/verify/<string(maxlength=1200):token>")
class LicenceVerify(MethodView):
    decorators: ClassVar[list[Any]] = [limiter.limit(VERIFY_LIMIT)]

    @blp.response(200, VerificationSchema)
    def get(self, token: str) -> Any:
        """核验令牌（公开，限流，记入审计日志）：签名、颁发机构密钥和证照当前状态"""
        return verification_dict(
            verification.verify_online(
                db_session, keyring(), token, facts=verify_facts(), log=verification_log(), channel="api"
            )
        )


def verification_dict(v: verification.Verification) -> dict[str, Any]:
    lic = v.licence
    return {
        "valid": v.valid,
        "reason": v.reason,
        "status": v.status,
        "status_label": v.status_label,
        "status_date": v.status_date.isoformat() if v.status_date else None,
        "category_label": v.category_label,
        "checked_at": v.checked_at.astimezone(CHINA_TZ).isoformat(timespec="seconds"),
        "licence": None
        if lic is None
        else {
            "identifier": lic.identifier,
            "type_name": lic.type_name,
            "number": lic.number,
            "holder_name": v.claims.holder_name_masked if v.claims else "",
            "holder_code": v.claims.holder_code_masked if v.claims else "",
            "issuer_name": lic.issuer_name,
            "valid_from": lic.valid_from.isoformat(),
            "valid_to": lic.valid_to.isoformat() if lic.valid_to else None,
        },
    }


# ---------------------------------------------------------------- public documents


def _jwk(kid: str, algorithm: str, public_raw: bytes) -> dict[str, Any]:
    return {"kid": kid, "alg": algorithm, "kty": "OKP", "crv": algorithm, "x": b64e(public_raw)}


@public.route("/licences/keys.json")
def public_keys() -> Any:
    """颁发机构签名公钥和状态列表签名公钥（JWK 风格）及有效期，供离线核验。

    含已停用（轮换）的密钥：它们仍可核验此前签发的令牌和状态列表。"""
    keys = [
        {
            **_jwk(k.kid, k.algorithm, b64d(k.public_key)),
            "issuer_code": k.issuer_code,
            "use": "sig",
            "valid_from": k.created_at.isoformat(),
            "retired_at": k.retired_at.isoformat() if k.retired_at else None,
            "verify_until": k.verify_until.isoformat() if k.verify_until else None,
            "status": "retired" if k.retired_at else "current",
        }
        for k in verification.key_rows(db_session())
    ]
    keys.extend(
        {
            **_jwk(k.kid, k.algorithm, k.public_raw),
            "use": "status-list",
            "issuer_code": None,
            "valid_from": k.created_at.isoformat(),
            "retired_at": k.retired_at.isoformat() if k.retired_at else None,
            "status": "retired" if k.retired_at else "current",
        }
        for k in verification.status_list_keys(db_session(), keystore())
    )
    response = jsonify(
        {
            "keys": keys,
            "token_format": "L1.<base64url(payload)>.<base64url(signature)>",
            "status_list_proof": "proof.value = base64url(signature over JSON of the document without proof, "
            "keys sorted, no spaces, UTF-8); proof.kid names the key",
        }
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@public.route("/licences/status/<any(revocation, suspension):purpose>.json")
def status_list(purpose: str) -> Any:
    """证照状态列表（W3C Bitstring Status List 思路）：revocation 第 i 位为 1 表示证照 i 已注销、吊销、撤销、
    挂失作废或被新版本替代；suspension 表示暂扣。"""
    bits, size = verification.status_bits(db_session(), purpose)
    encoded = "u" + base64.urlsafe_b64encode(gzip.compress(bits, mtime=0)).rstrip(b"=").decode()
    base = settings().public_base_url.rstrip("/")
    body = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": f"{base}/licences/status/{purpose}.json",
        "type": ["BitstringStatusListCredential"],
        "issuer": f"{base}/",
        "validFrom": utcnow().isoformat(),
        "credentialSubject": {
            "id": f"{base}/licences/status/{purpose}.json#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": encoded,
            "length": size,
            "note": "index = licence id (status_index in the token); revocation covers superseded versions",
        },
    }
    response = jsonify(sign_document(keystore().key_for(verification.STATUS_LIST_SIGNER), body))
    response.headers["Cache-Control"] = "public, max-age=30"
    return response


def register(app: Flask, api: Any) -> None:
    from core.web import add_moved_prefix, csrf

    s = app.extensions["gaogang.settings"]
    store = KeyStore(s.instance_dir / "licence_keys")
    store.check_permissions()  # private keys open to other users: refuse to start (KeyPermissionError)
    app.extensions["licences.keystore"] = store
    app.extensions["licences.keyring"] = verification.KeyRing()
    db: Database = app.extensions["gaogang.db"]
    facts = FactsCache()
    facts.follow_changes(db.sessionmaker)
    app.extensions["licences.verify_facts"] = facts
    # Tests share one database connection between sessions: there, no background thread may write.
    app.extensions["licences.verification_log"] = VerificationLog(
        db, max_age=s.verification_log_seconds, background=not s.testing
    )
    csrf.exempt(blp)
    api.register_blueprint(blp)
    app.register_blueprint(public)
    # The API spelled the resource "licenses" until this release; the old URLs redirect for one more.
    add_moved_prefix(app, "/api/v1/licenses", "/api/v1/licences")
