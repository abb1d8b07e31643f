"""HTML pages: staff licence pages under /staff/licences/, the public /verify/<token> page and the
public licence catalogue under /licences/types/. Same services as the API."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, Response, abort, flash, redirect, render_template, request, url_for

from core.errors import Invalid
from core.web import current_principal, db_session, form_dict, limiter, page_args, settings
from licenses import services
from licenses.api import VERIFY_LIMIT, keyring, keystore, qr_svg, verify_url
from licenses.masking import mask_code, mask_name
from licenses.models import HOLDER_CODE_TYPES, STATUS_LABELS
from licenses.sync_admin import licence_sync_status

bp = Blueprint(
    "licences",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/licences",
)

ACTION_LABELS = {"suspend": "暂停", "resume": "恢复", "revoke": "吊销/注销"}


def _login_or_redirect() -> Any:
    principal = current_principal()
    if not principal.is_authenticated:
        return None, redirect(f"/login?next={quote(request.full_path.rstrip('?'))}")
    return principal, None


def _view(licence: Any) -> dict[str, Any]:
    status = services.effective_status(licence)
    return {
        "licence": licence,
        "status": status,
        "status_label": services.EFFECTIVE_LABELS.get(status, status),
        "holder_name": mask_name(licence.holder_name, licence.holder_code_type),
        "holder_code": mask_code(licence.holder_code),
    }


def _face_from_form(form: dict[str, Any]) -> dict[str, Any]:
    return {k[5:]: v for k, v in form.items() if k.startswith("face.") and v != ""}


# ---------------------------------------------------------------- public


@bp.get("/verify/<string(maxlength=1200):token>")
@limiter.limit(VERIFY_LIMIT)
def verify(token: str) -> Any:
    result = services.verify_online(db_session(), keyring(), token)
    response = Response(render_template("licences/verify.html", v=result, status_labels=STATUS_LABELS))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/licences/types/")
def public_types() -> Any:
    current_principal()  # administrators see the edit links
    return render_template(
        "licences/types.html",
        types=services.list_licence_types(db_session(), active_only=True),
        holder_types=HOLDER_CODE_TYPES,
    )


@bp.get("/licences/types/<string(length=21):code>")
def public_type(code: str) -> Any:
    current_principal()
    session = db_session()
    lt = services.get_licence_type(session, code)
    return render_template(
        "licences/type.html",
        lt=lt,
        entries=services.type_entries(session, lt),
        holder_types=HOLDER_CODE_TYPES,
    )


# ---------------------------------------------------------------- staff


@bp.get("/staff/licences/export.csv")
def staff_export() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    status = request.args.get("status") or None
    if status not in (None, "valid", "suspended", "revoked"):
        status = None
    rows = services.export_licences(
        db_session(), principal, type_code=request.args.get("type_code") or None, status=status
    )
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel opens UTF-8 CSV correctly only with a BOM
    csv.writer(buf).writerows(rows)
    response = Response(buf.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=licences.csv"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/staff/licences/")
def staff_list() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    page, limit = page_args(20, 100)
    args = {k: request.args.get(k) or None for k in ("type_code", "status", "q")}
    if args["status"] not in (None, "valid", "suspended", "revoked", "superseded"):
        args["status"] = None
    result = services.list_licences(
        db_session(),
        principal,
        page=page,
        limit=limit,
        type_code=args["type_code"],
        status=args["status"],
        q=args["q"],
    )
    return render_template(
        "licences/list.html",
        page=result,
        rows=[_view(x) for x in result.items],
        args=args,
        types=services.list_licence_types(db_session()),
        status_labels=STATUS_LABELS,
    )


@bp.route("/staff/licences/new", methods=["GET", "POST"])
def staff_new() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    session = db_session()
    types = services.list_licence_types(session, active_only=True)
    code = request.values.get("type_code") or ""
    lt = next((t for t in types if t.code == code), None)
    errors: dict[str, Any] = {}
    values: dict[str, Any] = {}
    if request.method == "POST":
        values = form_dict()
        data = {
            k: values.get(k)
            for k in (
                "type_code",
                "holder_name",
                "holder_code",
                "number",
                "issue_date",
                "valid_from",
                "valid_to",
            )
            if values.get(k)
        }
        data["face"] = _face_from_form(values)
        try:
            licence = services.issue_licence(session, principal, data, default_area=settings().district_code)
        except Invalid as exc:
            errors = {"_message": exc.message, **exc.details}
        else:
            flash(f"已颁发：{licence.identifier}", "ok")
            return redirect(url_for("licences.staff_detail", licence_id=licence.id))
    return render_template(
        "licences/new.html", types=types, lt=lt, errors=errors, values=values, holder_types=HOLDER_CODE_TYPES
    ), 422 if errors else 200


@bp.get("/staff/licences/<int:licence_id>")
def staff_detail(licence_id: int) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    session = db_session()
    full = request.args.get("full") == "1"
    if full:
        licence = services.read_full_licence(
            session, principal, licence_id, purpose="页面查看完整持证信息"
        )
    else:
        licence = services.get_licence(session, principal, licence_id)
    own = principal.department_id == licence.issuer_department_id and not principal.is_admin
    token = services.token_for(session, keystore(), licence) if licence.is_current else None
    lt = services.get_licence_type(session, licence.type_code)
    face_labels = {f["key"]: f["label"] for f in lt.face_schema or []}
    return render_template(
        "licences/detail.html",
        face_labels=face_labels,
        full=full,
        own=own,
        token=token,
        url=verify_url(token) if token else None,
        versions=services.licence_versions(session, licence),
        sync=licence_sync_status(session, licence.id),  # type: ignore[arg-type]
        holder_types=HOLDER_CODE_TYPES,
        status_labels=STATUS_LABELS,
        **_view(licence),
    )


@bp.get("/staff/licences/<int:licence_id>/qr.svg")
def staff_qr(licence_id: int) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    _licence, token = services.licence_token(db_session(), principal, keystore(), licence_id)
    response = Response(qr_svg(verify_url(token)), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/staff/licences/<int:licence_id>/amend", methods=["GET", "POST"])
def staff_amend(licence_id: int) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    session = db_session()
    licence = services.read_full_licence(session, principal, licence_id, purpose="变更证照")
    lt = services.get_licence_type(session, licence.type_code)
    errors: dict[str, Any] = {}
    values: dict[str, Any] = {
        "holder_name": licence.holder_name,
        "number": licence.number,
        "valid_from": licence.valid_from.isoformat(),
        "valid_to": licence.valid_to.isoformat() if licence.valid_to else "",
        **{f"face.{k}": v for k, v in (licence.face or {}).items()},
    }
    if request.method == "POST":
        values = form_dict()
        changes: dict[str, Any] = {}
        for key in ("holder_name", "number", "valid_from", "valid_to"):
            new = values.get(key, "")
            old = getattr(licence, key)
            old_text = old.isoformat() if hasattr(old, "isoformat") else (old or "")
            if new != old_text:
                changes[key] = new or None
        face = _face_from_form(values)
        if face != (licence.face or {}):
            changes["face"] = face
        try:
            new_version = services.amend_licence(
                session, principal, licence.id or 0, changes, values.get("reason")
            )
        except Invalid as exc:
            errors = {"_message": exc.message, **exc.details}
        else:
            flash(f"已变更为第 {new_version.version} 版：{new_version.identifier}", "ok")
            return redirect(url_for("licences.staff_detail", licence_id=new_version.id))
    return render_template(
        "licences/amend.html", licence=licence, lt=lt, errors=errors, values=values
    ), 422 if errors else 200


def _status_action(licence_id: int, operation: str) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    func = {
        "suspend": services.suspend_licence,
        "resume": services.resume_licence,
        "revoke": services.revoke_licence,
    }[operation]
    licence = func(db_session(), principal, licence_id, request.form.get("reason"))
    flash(
        f"已{ACTION_LABELS[operation]}：{licence.identifier}",
        "ok",
    )
    return redirect(url_for("licences.staff_detail", licence_id=licence.id))


@bp.post("/staff/licences/<int:licence_id>/suspend")
def staff_suspend(licence_id: int) -> Any:
    return _status_action(licence_id, "suspend")


@bp.post("/staff/licences/<int:licence_id>/resume")
def staff_resume(licence_id: int) -> Any:
    return _status_action(licence_id, "resume")


@bp.post("/staff/licences/<int:licence_id>/revoke")
def staff_revoke(licence_id: int) -> Any:
    return _status_action(licence_id, "revoke")


# ---------------------------------------------------------------- administrators: licence types

TYPE_FORM_FIELDS = ("code", "name", "authority_name", "authority_level", "holder_code_type", "category")


def _type_form_data(values: dict[str, Any], errors: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {k: values.get(k, "") for k in TYPE_FORM_FIELDS if k in values}
    years = (values.get("validity_years") or "").strip()
    if years:
        if years.isdigit():
            data["validity_years"] = int(years)
        else:
            errors["validity_years"] = ["有效年限应为整数"]
    else:
        data["validity_years"] = None
    try:
        data["face_schema"] = json.loads(values.get("face_schema") or "[]")
    except json.JSONDecodeError as exc:
        errors["face_schema"] = [f"照面字段定义不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列"]
    data["is_active"] = values.get("is_active") == "on"
    return data


@bp.route("/staff/licence-types/new", methods=["GET", "POST"])
@bp.route("/staff/licence-types/<string(length=21):code>/edit", methods=["GET", "POST"])
def admin_type_form(code: str | None = None) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    if not principal.is_admin:
        abort(403)
    session = db_session()
    lt = services.get_licence_type(session, code) if code else None
    errors: dict[str, Any] = {}
    if lt is not None:
        values: dict[str, Any] = {k: getattr(lt, k) or "" for k in TYPE_FORM_FIELDS}
        values["validity_years"] = lt.validity_years or ""
        values["face_schema"] = json.dumps(lt.face_schema, ensure_ascii=False, indent=2)
        values["is_active"] = "on" if lt.is_active else ""
    else:
        values = {
            "authority_level": "区县级",
            "category": "证照",
            "holder_code_type": "111",
            "face_schema": "[]",
            "is_active": "on",
        }
    if request.method == "POST":
        values = form_dict()
        data = _type_form_data(values, errors)
        if not errors:
            try:
                if lt is None:
                    lt = services.create_licence_type(session, principal, data)
                else:
                    data.pop("code", None)
                    lt = services.update_licence_type(session, principal, lt.code, data)
            except Invalid as exc:
                errors = {"_message": exc.message, **exc.details}
            else:
                flash(f"已保存证照类型：{lt.name}", "ok")
                return redirect(url_for("licences.public_type", code=lt.code))
        errors.setdefault("_message", "请修改标出的内容")
    return render_template(
        "licences/type_form.html", lt=lt, values=values, errors=errors, holder_types=HOLDER_CODE_TYPES
    ), 422 if errors else 200


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
