"""HTML pages: staff licence pages under /staff/licences/, the public /verify/<token> page and the
public licence catalogue under /licences/types/. Same services as the API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from sqlmodel import col, select

from catalog.models import Department
from core.auth import ROLE_LABELS, User
from core.db import id_of
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.exports import csv_text
from core.types import CHINA_TZ
from core.web import current_principal, db_session, form_dict, form_id, limiter, page_args, settings
from licenses import authorisations, grants, issuing, queries, verification
from licenses import types as licence_types
from licenses.api import (
    VERIFY_LIMIT,
    keyring,
    keystore,
    qr_svg,
    verification_log,
    verify_facts,
    verify_url,
)
from licenses.masking import mask_code, mask_face, mask_name
from licenses.models import (
    ENDED_STATUSES,
    REASON_CATEGORIES,
    STATUS_LABELS,
    TYPE_HOLDER_LABELS,
    LicenceStatus,
)
from licenses.notify import FileOutboxSender
from licenses.sync_admin import licence_sync_status

bp = Blueprint(
    "licences",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/licences",
)

ACTION_LABELS = {"suspend": "暂扣", "resume": "恢复", "revoke": "吊销"}


def _login_or_redirect() -> Any:
    principal = current_principal()
    if not principal.is_authenticated:
        return None, redirect(f"/login?next={quote(request.full_path.rstrip('?'))}")
    return principal, None


def _view(licence: Any) -> dict[str, Any]:
    status = queries.effective_status(licence)
    return {
        "licence": licence,
        "status": status,
        "status_label": queries.EFFECTIVE_LABELS.get(status, status),
        "status_date": queries.effective_status_date(licence),
        "category_label": queries.public_reason_category(licence),
        "holder_name": mask_name(licence.holder_name, licence.holder_code_type),
        "holder_code": mask_code(licence.holder_code),
    }


def _face_from_form(form: dict[str, Any]) -> dict[str, Any]:
    return {k[5:]: v for k, v in form.items() if k.startswith("face.") and v != ""}


# ---------------------------------------------------------------- public


@bp.get("/verify/<string(maxlength=1200):token>")
@limiter.limit(VERIFY_LIMIT)
def verify(token: str) -> Any:
    result = verification.verify_online(
        db_session, keyring(), token, facts=verify_facts(), log=verification_log()
    )
    checked = result.checked_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
    response = Response(
        render_template("licences/verify.html", v=result, status_labels=STATUS_LABELS, checked=checked)
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/licences/types/")
def public_types() -> Any:
    current_principal()  # administrators see the edit links
    return render_template(
        "licences/types.html",
        types=licence_types.list_licence_types(db_session(), active_only=True),
        holder_types=TYPE_HOLDER_LABELS,
    )


@bp.get("/licences/types/<string(length=21):code>")
def public_type(code: str) -> Any:
    current_principal()
    session = db_session()
    lt = licence_types.get_licence_type(session, code)
    return render_template(
        "licences/type.html",
        lt=lt,
        entries=licence_types.type_entries(session, lt),
        holder_types=TYPE_HOLDER_LABELS,
    )


# ---------------------------------------------------------------- staff


@bp.get("/staff/licences/export.csv")
def staff_export() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    status = request.args.get("status") or None
    if status not in STATUS_LABELS:
        status = None
    rows = queries.export_licences(
        db_session(), principal, type_code=request.args.get("type_code") or None, status=status
    )
    response = Response(csv_text(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = "attachment; filename=licences.csv"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/staff/licences/")
def staff_list() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    page, limit = page_args(20, 100)
    rights = grants.licence_rights(db_session(), principal)
    args = {k: request.args.get(k) or None for k in ("type_code", "status", "q")}
    if args["status"] not in STATUS_LABELS:
        args["status"] = None
    result = queries.list_licences(
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
        types=[
            t
            for t in licence_types.list_licence_types(db_session())
            if principal.is_admin or t.code in rights
        ],
        can_issue=bool(rights),
        status_labels=STATUS_LABELS,
    )


@bp.route("/staff/licences/new", methods=["GET", "POST"])
def staff_new() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    session = db_session()
    rights = grants.licence_rights(session, principal)
    types = [t for t in licence_types.list_licence_types(session, active_only=True) if t.code in rights]
    if not types:
        raise Forbidden(grants.NO_RIGHTS)
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
                "task_code",
            )
            if values.get(k)
        }
        data["face"] = _face_from_form(values)
        try:
            licence = issuing.issue_licence(
                session, principal, data, default_area=settings().district_code, keystore=keystore()
            )
        except (Invalid, Conflict) as exc:  # a number in use is a Conflict naming the field
            errors = {"_message": exc.message, **exc.details}
        else:
            flash(f"已颁发：{licence.identifier}", "ok")
            return redirect(url_for("licences.staff_detail", licence_id=licence.id))
    dept = session.get(Department, principal.department_id) if principal.department_id else None
    producing = issuing.producing_services(session, lt, dept) if lt is not None and dept is not None else []
    return render_template(
        "licences/new.html",
        types=types,
        lt=lt,
        errors=errors,
        values=values,
        holder_types=TYPE_HOLDER_LABELS,
        producing=producing,
    ), 422 if errors else 200


@bp.get("/staff/licences/<int:licence_id>")
def staff_detail(licence_id: int) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    session = db_session()
    full = request.args.get("full") == "1"
    if full:
        licence = queries.read_full_licence(session, principal, licence_id, purpose="页面查看完整持证信息")
    else:
        licence = queries.get_licence(session, principal, licence_id)
    own = principal.department_id == licence.issuer_department_id and not principal.is_admin
    token = verification.token_for(session, keystore(), licence) if licence.is_current else None
    lt = licence_types.get_licence_type(session, licence.type_code)
    face_labels = {f["key"]: f["label"] for f in lt.face_schema or []}
    return render_template(
        "licences/detail.html",
        face_labels=face_labels,
        face=(licence.face or {}) if full else mask_face(licence.face, lt.face_schema),
        full=full,
        own=own,
        token=token,
        url=verify_url(token) if token else None,
        versions=queries.licence_versions(session, licence),
        sync=licence_sync_status(session, id_of(licence)),
        holder_types=TYPE_HOLDER_LABELS,
        status_labels=STATUS_LABELS,
        ended=[(s.value, STATUS_LABELS[s], REASON_CATEGORIES[s]) for s in ENDED_STATUSES],
        suspend_categories=REASON_CATEGORIES[LicenceStatus.SUSPENDED],
        today=licence_types.today(),
        **_view(licence),
    )


@bp.get("/staff/licences/<int:licence_id>/qr.svg")
def staff_qr(licence_id: int) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    _licence, token = verification.licence_token(db_session(), principal, keystore(), licence_id)
    response = Response(qr_svg(verify_url(token)), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/staff/licences/<int:licence_id>/amend", methods=["GET", "POST"])
def staff_amend(licence_id: int) -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    session = db_session()
    licence = queries.read_full_licence(session, principal, licence_id, purpose="变更证照")
    lt = licence_types.get_licence_type(session, licence.type_code)
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
            new_version = issuing.amend_licence(
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
        "suspend": issuing.suspend_licence,
        "resume": issuing.resume_licence,
        "revoke": issuing.revoke_licence,
    }[operation]
    try:
        licence = func(
            db_session(),
            principal,
            licence_id,
            request.form.get("reason"),
            category=request.form.get("category") or None,
            effective_date=request.form.get("effective_date") or None,
        )
    except Invalid as exc:
        flash(f"{exc.message}：{_error_text(exc)}", "error")
        return redirect(url_for("licences.staff_detail", licence_id=licence_id))
    flash(f"已{ACTION_LABELS[operation]}：{licence.identifier}", "ok")
    return redirect(url_for("licences.staff_detail", licence_id=licence.id))


def _error_text(exc: Invalid) -> str:
    return "；".join(m for messages in exc.details.values() for m in messages)


@bp.post("/staff/licences/<int:licence_id>/status")
def staff_status(licence_id: int) -> Any:
    """One form for every status change: the target status, its public category, date and reason."""
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    to = request.form.get("status") or ""
    try:
        licence = issuing.change_status(
            db_session(),
            principal,
            licence_id,
            to=to,
            category=request.form.get("category") or None,
            effective_date=request.form.get("effective_date") or None,
            reason=request.form.get("reason"),
        )
    except Invalid as exc:
        flash(f"{exc.message}：{_error_text(exc)}", "error")
        return redirect(url_for("licences.staff_detail", licence_id=licence_id))
    flash(f"已{STATUS_LABELS[LicenceStatus(licence.status)]}：{licence.identifier}", "ok")
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
        if years.isascii() and years.isdigit() and len(years) <= 4:  # "²" passed isdigit, then int() raised
            data["validity_years"] = int(years)
        else:
            errors["validity_years"] = ["有效年限应为整数"]
    else:
        data["validity_years"] = None
    try:
        data["face_schema"] = json.loads(values.get("face_schema") or "[]")
    except json.JSONDecodeError as exc:
        errors["face_schema"] = [f"照面字段定义不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列"]
    except (RecursionError, ValueError):
        # Deep nesting and over-long numbers: the request's own JSON is guarded (core.input_guard), a
        # form field's is not, and json.loads raised RecursionError or ValueError (a 500).
        errors["face_schema"] = ["照面字段定义嵌套过深或数字过长"]
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
    lt = licence_types.get_licence_type(session, code) if code else None
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
                    lt = licence_types.create_licence_type(session, principal, data)
                else:
                    data.pop("code", None)
                    lt = licence_types.update_licence_type(session, principal, lt.code, data)
            except Invalid as exc:
                errors = {"_message": exc.message, **exc.details}
            else:
                flash(f"已保存证照类型：{lt.name}", "ok")
                return redirect(url_for("licences.public_type", code=lt.code))
        errors.setdefault("_message", "请修改标出的内容")
    return render_template(
        "licences/type_form.html", lt=lt, values=values, errors=errors, holder_types=TYPE_HOLDER_LABELS
    ), 422 if errors else 200


# ---------------------------------------------------------------- the holder: 用证记录


@bp.get("/admin/licence-grants")
def admin_grants() -> Any:
    """证照管理权限: administrators grant and revoke licence rights per department and licence type."""
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    if not principal.is_admin:
        abort(403)
    session = db_session()
    departments = list(session.exec(select(Department).order_by(Department.level, Department.name)).all())
    department_id = request.args.get("department_id", type=int)
    chosen = next((d for d in departments if d.id == department_id), None)
    staff = (
        list(
            session.exec(
                select(User)
                .where(User.department_id == chosen.id, col(User.is_active).is_(True))
                .order_by(User.username)
            ).all()
        )
        if chosen is not None
        else []
    )
    response = Response(
        render_template(
            "licences/admin_grants.html",
            departments=departments,
            chosen=chosen,
            staff=staff,
            types=licence_types.list_licence_types(session, active_only=True),
            grants=grants.list_grants(session, principal, department_id=chosen.id if chosen else None),
            role_labels=ROLE_LABELS,
            china=CHINA_TZ,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _back_to_grants() -> Any:
    department_id = request.form.get("department_id", type=int)
    if department_id:
        return redirect(url_for("licences.admin_grants", department_id=department_id))
    return redirect(url_for("licences.admin_grants"))


@bp.post("/admin/licence-grants/grant")
def admin_grant() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    if not principal.is_admin:
        abort(403)
    try:
        given = grants.grant_licence_rights(
            db_session(),
            principal,
            user_id=form_id("user_id") or 0,
            type_codes=request.form.getlist("type_codes"),
        )
    except (Invalid, NotFound) as exc:
        detail = _error_text(exc) if isinstance(exc, Invalid) else ""
        flash(f"{exc.message}：{detail}" if detail else exc.message, "error")
        return _back_to_grants()
    flash(f"已授予 {len(given)} 个证照类型的办理权限", "ok")
    return _back_to_grants()


@bp.post("/admin/licence-grants/revoke")
def admin_revoke_grant() -> Any:
    principal, redirect_to = _login_or_redirect()
    if redirect_to:
        return redirect_to
    if not principal.is_admin:
        abort(403)
    code = (request.form.get("type_code") or "").strip()
    if not code:
        flash("请指明要收回的证照类型", "error")
        return _back_to_grants()
    ended = grants.revoke_licence_rights(
        db_session(), principal, user_id=form_id("user_id") or 0, type_codes=[code]
    )
    if ended:
        flash("已收回该证照类型的办理权限", "ok")
    else:
        flash("该用户没有这项权限（或此前已收回），未作改动", "error")
    return _back_to_grants()


HOLDER_PROOF = "licences.holder_proof"  # cookie-session key: the one-time code the page was opened with


@bp.route("/licences/my-uses", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def holder_uses_page() -> Any:
    """The holder sees who used which of its licences when, and which authorisations it gave, and may
    withdraw one (授权撤回): holder code, then the one-time code; the page then holds that code as
    its proof for HOLDER_CODE_MINUTES."""
    session = db_session()
    values = form_dict() if request.method == "POST" else {}
    holder_code = (values.get("holder_code") or "").strip().upper()
    action = values.get("action")
    step, uses, auths, error, notice, status = "ask", None, None, None, None, 200
    if request.method == "POST" and action == "send":
        try:
            authorisations.request_holder_code(
                session, holder_code, current_app.extensions["licences.code_sender"]
            )
        except (Invalid, Conflict) as exc:
            error, status = exc.message + "".join(f"：{m[0]}" for m in exc.details.values()), exc.status
        else:
            step = "code"
    elif request.method == "POST" and action == "view":
        try:
            proof = authorisations.check_holder_entry(session, holder_code, values.get("code") or "")
        except Forbidden as exc:
            session.commit()  # the failed attempt must count although the answer is an error
            error, step, status = exc.message, "code", 403
        else:
            cookie_session[HOLDER_PROOF] = proof.id
            step = "list"
    elif request.method == "POST" and action == "withdraw":
        try:
            auth = authorisations.withdraw_authorisation_as_holder(
                session,
                holder_code,
                cookie_session.get(HOLDER_PROOF),
                # A bounded parse: int() raised on "abc" or "²" (a 500 to anyone posting the form).
                form_id("authorisation_id") or 0,
            )
        except Forbidden as exc:
            error, step, status = exc.message, "ask", 403
        except (NotFound, Conflict) as exc:
            error, step, status = exc.message, "list", exc.status
        else:
            step = "list"
            notice = f"已撤回办件 {auth.case_number} 的用证授权，该部门不能再凭此授权使用您的证照"
    if step == "list":
        uses = authorisations.uses_of(session, holder_code)
        auths = authorisations.holder_authorisations(session, holder_code)
    response = Response(
        render_template(
            "licences/my_uses.html",
            step=step,
            uses=uses,
            auths=auths,
            error=error,
            notice=notice,
            holder_code=holder_code,
            masked=mask_code(holder_code) if holder_code else "",
            china=CHINA_TZ,
        ),
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _licence_menu() -> dict[str, Any]:
    """base.html links 电子证照 only for those the licence list lets in: administrators and holders of
    a licence grant (a catalogue role alone gives none, and the list would answer 403)."""

    def shown() -> bool:
        principal = g.get("principal")
        if principal is None or not principal.is_authenticated:
            return False
        return principal.is_admin or grants.has_licence_rights(db_session(), principal)

    return {"licence_menu": shown}


def register(app: Flask, api: Any) -> None:
    s = app.extensions["gaogang.settings"]
    app.context_processor(_licence_menu)
    # The demo's and the default sender: a 0600 file under instance/ (docs/licences.md).
    app.extensions.setdefault(
        "licences.code_sender", FileOutboxSender(s.instance_dir / "holder_outbox.jsonl")
    )
    app.register_blueprint(bp)
