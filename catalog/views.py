"""Staff pages (server-rendered, Simplified Chinese): entries, claims, review, history, consistency,
and the administrator's users and departments.

Every write goes through catalog.services or core.users; this module only parses forms, maps
``Invalid.details`` onto form fields and renders. Reads that the contract has no function for
(the basic-item list, names of departments and divisions, audit rows) are plain selects.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    flash,
    g,
    has_request_context,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlmodel import Session, col, select

from catalog import (
    attachments,
    element_form,
    elements,
    entry_elements,
    history,
    permissions,
    quality,
    review_settings,
    revisions,
    scope,
    services,
    upper,
)
from catalog import entries as entry_services
from catalog.consistency import consistency_report, coverage, drifted_fields
from catalog.elements import DEPTH_LEVELS, HANDLE_FORMS, NO_CONTACT_CLASSES
from catalog.models import (
    ENTRY_STATUS_LABELS,
    MATERIAL_FORMS,
    ONLINE_DEPTH,
    PROJECT_TYPES,
    RESULT_DELIVERY,
    TASK_TYPES,
    TIME_UNITS,
    UPPER_LEVELS,
    USE_LEVELS,
    CatalogItem,
    Department,
    Division,
    EntryStatus,
    ImplementationEntry,
    UpperCatalogItem,
)
from core import users
from core.audit import AuditLog
from core.auth import (
    ROLE_LABELS,
    ApiToken,
    Principal,
    Role,
    User,
)
from core.db import MAX_DB_ID, id_of
from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unauthorized
from core.web import current_principal, db_session, page_args, require_admin, require_login, settings

bp = Blueprint("staff", __name__, template_folder="templates")

EXTRA_BLANK_ROWS = 2
# Plain-text fields of the entry form and their maximum lengths (the models' limits).
TEXT_FIELDS = {
    "accept_conditions": 5000,
    "visits_reason": 500,
    "online_url": 500,
    "window_address": 300,
    "opening_hours": 200,
    "phone": 40,
    "keywords": 500,
    "meeting_step": 200,
}
INT_FIELDS = ("anticipate_days", "promise_days", "visits")
FIELD_LABELS = {
    "accept_conditions": "受理条件",
    "anticipate_days": "法定办结时限",
    "anticipate_unit": "法定时限单位",
    "promise_days": "承诺办结时限",
    "promise_unit": "承诺时限单位",
    "project_type": "办件类型",
    "visits": "到办事现场次数",
    "visits_reason": "需到现场的理由",
    "online_depth": "网上办理深度",
    "online_url": "网上办理地址",
    "result_delivery": "结果送达方式",
    "window_address": "窗口地址",
    "opening_hours": "办理时间",
    "phone": "咨询电话",
    "keywords": "检索关键词",
    "handle_forms": "办理形式",
    "meeting_step": "需见面的环节",
    "tolerant_acceptance": "容缺受理",
    "materials": "申请材料",
    "fees": "收费项目",
    "no_contact": "不见面审批",
    "reason": "理由",
    "name": "名称",
    "uscc": "统一社会信用代码",
    "level": "层级",
    "division_code": "所在区划",
    "username": "用户名",
    "password": "密码",
    "display_name": "姓名",
    "role": "角色",
    "department_id": "所属部门",
}
FIELD_LABELS |= {k: v for k, v in elements.FIELD_LABELS.items() if k not in FIELD_LABELS}


# ---------------------------------------------------------------- helpers


def _session() -> Session:
    return db_session()


def _staff() -> Principal:
    """The logged-in staff member; anonymous visitors go to the login page (see _unauthorised)."""
    return require_login()


def _entry_for_view(session: Session, principal: Principal, entry_id: int) -> ImplementationEntry:
    entry = entry_services.get_entry(session, entry_id)
    if not permissions.can_view_entry(principal, entry):
        raise Forbidden("无权查看其他部门或区划未发布的实施清单")
    return entry


def _names(session: Session, entries: list[ImplementationEntry]) -> tuple[dict[int, str], dict[str, str]]:
    dept_ids = {e.department_id for e in entries}
    div_codes = {e.division_code for e in entries}
    depts = {}
    if dept_ids:
        in_depts = col(Department.id).in_(dept_ids)
        depts = {id_of(d): d.name for d in session.exec(select(Department).where(in_depts))}
    divs = {}
    if div_codes:
        in_divs = col(Division.code).in_(div_codes)
        divs = {d.code: d.name for d in session.exec(select(Division).where(in_divs))}
    return depts, divs


def _field_errors(details: Any) -> dict[str, list[str]]:
    """Invalid.details (field -> [messages]) keyed by the form's input names (m-0-name, f-1-amount...)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(details, dict):
        return errors
    for key, messages in details.items():
        if isinstance(messages, dict):
            # Nested shapes such as {"materials": {"0": {"name": [...]}}} flatten to dotted keys.
            for sub, inner in _flatten(str(key), messages).items():
                errors.setdefault(_form_key(sub), []).extend(inner)
            continue
        msgs = [messages] if isinstance(messages, str) else [str(m) for m in messages]
        errors.setdefault(_form_key(str(key)), []).extend(msgs)
    return errors


def _flatten(prefix: str, value: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(_flatten(f"{prefix}.{k}", v))
    elif isinstance(value, str):
        out[prefix] = [value]
    else:
        out[prefix] = [str(v) for v in value]
    return out


def _form_key(key: str) -> str:
    return element_form.form_key(key) or key


def _flash_domain_error(error: DomainError) -> None:
    """One flash line: the service's headline plus each field's messages under its Chinese label."""
    details = error.details if isinstance(error.details, dict) else {}
    parts = []
    for field, msgs in details.items():
        if field in ("status", "entry_id", "item_id"):
            continue
        text = "；".join(str(m) for m in msgs) if isinstance(msgs, list) else str(msgs)
        label = FIELD_LABELS.get(str(field))
        parts.append(f"{label}：{text}" if label else text)
    if parts:
        head = error.message.split("：", 1)[0]
        flash(f"{head}。" + "；".join(parts), "error")
    else:
        flash(error.message, "error")


def _back_to_entry(entry_id: int) -> Any:
    return redirect(url_for("staff.entry_detail", entry_id=entry_id))


def _parse_int(form: dict[str, str], name: str, errors: dict[str, list[str]], *, low: int = 0,
               high: int = 100_000) -> int | None:
    raw = form.get(name, "").strip()
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        errors.setdefault(name, []).append("请输入整数")
        return None
    if not low <= value <= high:
        errors.setdefault(name, []).append(f"应在 {low} 到 {high} 之间")
        return None
    return value


def _parse_yuan(raw: str) -> int | None:
    """A fee typed in 元 (up to 2 decimals) as integer fen; None when it is not a valid amount."""
    try:
        amount = Decimal(raw.strip().replace(",", "").replace("，", ""))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > Decimal("100000000") or amount != amount.quantize(
        Decimal("0.01")
    ):
        return None
    return int(amount * 100)


def _entry_form_values(entry: ImplementationEntry, materials: list[Any], fees: list[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(entry, name) or "" for name in TEXT_FIELDS}
    for name in INT_FIELDS:
        value = getattr(entry, name)
        values[name] = "" if value is None else str(value)
    for name in ("anticipate_unit", "promise_unit", "project_type"):
        values[name] = getattr(entry, name) or ""
    values |= element_form.element_values(entry)
    values["online_depth"] = [c for c in (entry.online_depth or "").split(",") if c]
    values["result_delivery"] = [c for c in (entry.result_delivery or "").split(",") if c]
    values["handle_forms"] = [c for c in (entry.handle_forms or "").split(",") if c]
    values["tolerant_acceptance"] = {None: "", True: "1", False: "0"}[entry.tolerant_acceptance]
    values["materials"] = [
        {
            "name": m.name,
            "form": m.form,
            "required": m.required,
            "copies": "" if m.copies is None else str(m.copies),
            "licence_type_code": m.licence_type_code or "",
            "notes": m.notes or "",
            **element_form.material_element_values(m),
        }
        for m in materials
    ]
    values["fees"] = [
        {
            "name": f.name,
            "amount": f"{Decimal(f.amount_fen) / 100:.2f}",
            "basis": f.basis or "",
            "reducible": f.reducible,
        }
        for f in fees
    ]
    return values


def _rows(prefix: str, form: Any) -> list[int]:
    indices = set()
    for key in form:
        match = re.match(rf"^{prefix}-(\d+)-", key)
        if match and len(match.group(1)) < 4:
            indices.add(int(match.group(1)))
    return sorted(indices)


def _parse_entry_form(form: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]],
                                          list[dict[str, Any]], dict[str, list[str]]]:
    """(values to re-display, fields, materials, fees, parse errors) from the submitted form.

    Only the shape is checked here (numbers are numbers); the rules live in the services.
    """
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        raw = form.get(name, "").strip()
        values[name] = raw
        if len(raw) > limit:
            errors.setdefault(name, []).append(f"不能超过 {limit} 个字")
        fields[name] = raw or (None if name != "keywords" else "")
    for name in INT_FIELDS:
        values[name] = form.get(name, "").strip()
        high = entry_services.MAX_VISITS if name == "visits" else entry_services.MAX_DAYS
        fields[name] = _parse_int(form, name, errors, high=high)
    for name, allowed in (("anticipate_unit", TIME_UNITS), ("promise_unit", TIME_UNITS),
                          ("project_type", PROJECT_TYPES)):
        raw = form.get(name, "")
        values[name] = raw
        if raw and raw not in allowed:
            errors.setdefault(name, []).append("请选择有效的选项")
        fields[name] = raw or None  # 未填报
    depth = [c for c in form.getlist("online_depth") if c in ONLINE_DEPTH]
    delivery = [c for c in form.getlist("result_delivery") if c in RESULT_DELIVERY]
    values["online_depth"], values["result_delivery"] = depth, delivery
    fields["online_depth"] = ",".join(sorted(set(depth)))
    fields["result_delivery"] = ",".join(k for k in RESULT_DELIVERY if k in delivery) or None
    forms = [c for c in form.getlist("handle_forms") if c in HANDLE_FORMS]
    values["handle_forms"] = forms
    fields["handle_forms"] = ",".join(k for k in HANDLE_FORMS if k in forms) or None
    tolerant = form.get("tolerant_acceptance", "")
    values["tolerant_acceptance"] = tolerant if tolerant in ("", "1", "0") else ""
    fields["tolerant_acceptance"] = {"1": True, "0": False}.get(tolerant)

    materials: list[dict[str, Any]] = []
    values["materials"] = []
    for i in _rows("m", form):
        row = {
            "name": form.get(f"m-{i}-name", "").strip(),
            "form": form.get(f"m-{i}-form", "paper"),
            "required": form.get(f"m-{i}-required") == "1",
            "copies": form.get(f"m-{i}-copies", "").strip(),
            "licence_type_code": form.get(f"m-{i}-licence_type_code", "").strip(),
            "notes": form.get(f"m-{i}-notes", "").strip(),
        }
        if not row["name"] and not row["licence_type_code"] and not row["notes"]:
            continue  # a blank row: removed or never filled
        shown_elements, material_elements = element_form.parse_material_elements(form, i)
        row |= shown_elements
        pos = len(materials)
        values["materials"].append(row)
        if not row["name"]:
            errors.setdefault(f"m-{pos}-name", []).append("请填写材料名称")
        if len(row["name"]) > 200:
            errors.setdefault(f"m-{pos}-name", []).append("不能超过 200 个字")
        if row["form"] not in MATERIAL_FORMS:
            errors.setdefault(f"m-{pos}-form", []).append("请选择材料形式")
        materials.append({
            "name": row["name"],
            "form": row["form"],
            "required": row["required"],
            "copies": row["copies"] or None,  # checked (1-99 or 未填报) by the service
            "licence_type_code": row["licence_type_code"] or None,
            "notes": row["notes"] or None,
            **material_elements,
        })

    fees: list[dict[str, Any]] = []
    values["fees"] = []
    for i in _rows("f", form):
        row = {
            "name": form.get(f"f-{i}-name", "").strip(),
            "amount": form.get(f"f-{i}-amount", "").strip(),
            "basis": form.get(f"f-{i}-basis", "").strip(),
            "reducible": form.get(f"f-{i}-reducible") == "1",
        }
        if not row["name"] and not row["amount"] and not row["basis"]:
            continue
        pos = len(fees)
        values["fees"].append(row)
        if not row["name"]:
            errors.setdefault(f"f-{pos}-name", []).append("请填写收费项目名称")
        amount = _parse_yuan(row["amount"]) if row["amount"] else None
        if amount is None:
            errors.setdefault(f"f-{pos}-amount", []).append("请填写金额（元，最多两位小数，不能为负）")
            amount = 0
        fees.append({"name": row["name"], "amount_fen": amount, "basis": row["basis"],
                     "reducible": row["reducible"]})
    return values, fields, materials, fees, errors


def _form_options() -> dict[str, Any]:
    return {
        "TIME_UNITS": TIME_UNITS,
        "PROJECT_TYPES": PROJECT_TYPES,
        "ONLINE_DEPTH": ONLINE_DEPTH,
        "RESULT_DELIVERY": RESULT_DELIVERY,
        "HANDLE_FORMS": HANDLE_FORMS,
        "DEPTH_LEVELS": DEPTH_LEVELS,
        "NO_CONTACT_CLASSES": NO_CONTACT_CLASSES,
        "MATERIAL_FORMS": MATERIAL_FORMS,
        "EXTRA_BLANK_ROWS": EXTRA_BLANK_ROWS,
        "ELEMENTS": entry_elements.ELEMENTS,
        "MATERIAL_ELEMENTS": entry_elements.MATERIAL_ELEMENTS,
        "SPECS": entry_elements.BY_NAME,
        "MATERIAL_SPECS": {e.name: e for e in entry_elements.MATERIAL_ELEMENTS},
        "el": elements,
    }


def _common() -> dict[str, Any]:
    return {
        "TASK_TYPES": TASK_TYPES,
        "USE_LEVELS": USE_LEVELS,
        "STATUS_LABELS": {s.value: label for s, label in ENTRY_STATUS_LABELS.items()},
        "ROLE_LABELS": {r.value: label for r, label in ROLE_LABELS.items()},
        "FIELD_LABELS": FIELD_LABELS,
    }


def _no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- entries


@bp.get("/staff/entries/")
def entry_list() -> Any:
    principal = _staff()
    session = _session()
    page, limit = page_args(default_limit=20)
    status = request.args.get("status") or None
    if status not in ENTRY_STATUS_LABELS.values() and status not in {s.value for s in EntryStatus}:
        status = None
    level = request.args.get("level") or None
    if level not in USE_LEVELS:
        level = None
    q = (request.args.get("q") or "").strip()[:100] or None
    department_id = request.args.get("department_id", type=int)
    if department_id is not None and not 0 < department_id < MAX_DB_ID:
        department_id = None
    division_code = (request.args.get("division_code") or "")[:12] or None
    depth_level = request.args.get("depth_level", type=int)
    if depth_level not in DEPTH_LEVELS:
        depth_level = None
    everyone = request.args.get("all") == "1"
    under_division: str | None = None
    departments: list[Department] = []
    scope_divisions: list[Division] = []
    if principal.is_admin:
        departments = list(session.exec(select(Department).order_by(Department.level, Department.name)))
    elif everyone:
        # Other bodies' published entries, for reference; the services hide their drafts.
        department_id, division_code = None, None
    elif principal.department_id is not None:
        department_id, division_code = principal.department_id, None
    else:
        prefix = permissions.division_scope_prefix(principal.division_code) or ""
        scope_divisions = list(session.exec(
            select(Division).where(col(Division.code).startswith(prefix)).order_by(col(Division.code))
        )) if prefix else []
        codes = {d.code for d in scope_divisions}
        department_id = None
        if division_code not in codes:
            # "全部" (the default): the operator's division and every village under it.
            division_code = None
            under_division = principal.division_code if scope_divisions else None
    entries, total = entry_services.list_entries(
        session, principal, status=status, department_id=department_id, division_code=division_code,
        level=level, q=q, page=page, limit=limit, under_division=under_division, depth_level=depth_level,
    )
    depts, divs = _names(session, entries)
    editable = {e.id for e in entries if permissions.can_edit_entry(principal, e)}
    pages = max(1, -(-total // limit))
    open_revisions = revisions.open_revisions_of(session, [id_of(e) for e in entries])
    waiting = revisions.revisions_to_handle(session, principal) if not everyone else []
    return render_template(
        "staff/entries.html", editable=editable, open_revisions=open_revisions, waiting=waiting,
        REVISION_STATUS_LABELS=revisions.STATUS_WORDS,
        entries=entries, total=total, page=page, pages=pages, limit=limit,
        depts=depts, divs=divs, departments=departments, scope_divisions=scope_divisions,
        everyone=everyone,
        DEPTH_LEVELS=DEPTH_LEVELS, DEPTH_SHORT={1: "Ⅰ级", 2: "Ⅱ级", 3: "Ⅲ级", 4: "Ⅳ级"},
        filters={"status": status or "", "level": level or "", "q": q or "", "depth_level": depth_level or "",
                 "department_id": department_id or "" if principal.is_admin else "",
                 "division_code": division_code or "" if scope_divisions else "",
                 "all": "1" if everyone else ""},
        **_common(),
    )


@bp.get("/staff/entries/<int:entry_id>")
def entry_detail(entry_id: int) -> Any:
    principal = _staff()
    session = _session()
    entry = _entry_for_view(session, principal, entry_id)
    materials = entry_services.entry_materials(session, entry.id)
    fees = entry_services.entry_fees(session, entry.id)
    rule = entry_services.check_no_contact(session, entry)
    findings = entry_services.entry_findings(session, entry)
    depts, divs = _names(session, [entry])
    item = session.get(CatalogItem, entry.item_id)
    upper_item = session.get(UpperCatalogItem, item.upper_item_id) if item and item.upper_item_id else None
    drift = drifted_fields(entry, upper_item) if upper_item is not None else {}
    return render_template(
        "staff/entry_detail.html", **_review_context(session, principal, entry),
        entry=entry, item=item, materials=materials, fees=fees, rule=rule,
        element_rows=entry_elements.element_rows(entry),
        steps=entry_elements.entry_steps(session, entry.id),
        faqs=entry_elements.entry_faqs(session, entry.id),
        findings=findings, QUALITY_LEVELS=quality.LEVEL_LABELS,
        upper_item=upper_item, drift=drift, DRIFT_LABELS=DRIFT_LABELS, UPPER_LEVELS=UPPER_LEVELS,
        department_name=depts.get(entry.department_id, ""), division_name=divs.get(entry.division_code, ""),
        can_edit=permissions.can_edit_entry(principal, entry),
        can_review=permissions.can_review_entry(principal, entry),
        can_reopen=permissions.can_reopen_entry(principal, entry),
        **_form_options(), **_common(),
    )


def _review_context(session: Session, principal: Principal, entry: ImplementationEntry) -> dict[str, Any]:
    """What the entry page shows about review: the open revision and its diff against the published
    version, the diff of a submitted draft against its last published version (or against nothing),
    and whether four-eyes review stops this user from approving. Only to those who edit or review it:
    what is being prepared for a published entry is not shown to other departments."""
    in_work = permissions.can_view_working_state(principal, entry)
    revision = revisions.open_revision_of(session, entry.id) if in_work else None
    revision_changes: list[history.Change] = []
    authors: set[int] = set()
    if revision is not None:
        revision_changes = history.diff_states(
            revisions.published_state(session, entry), revisions.proposed_state(session, entry, revision)
        )
        if revision.status == "submitted":
            authors = entry_services.authors_of(session, entry, revision)
    draft_changes: list[history.Change] = []
    last_published = None
    if entry.status == EntryStatus.SUBMITTED.value:
        last_published = revisions.last_published_state(session, entry)
        draft_changes = history.diff_states(last_published, revisions.published_state(session, entry))
        authors = entry_services.authors_of(session, entry)
    four_eyes = review_settings.four_eyes_enabled(session)
    return {
        "revision": revision,
        "revision_changes": revision_changes,
        "draft_changes": draft_changes,
        "draft_has_published": last_published is not None,
        "past_revisions": [
            r for r in revisions.entry_revisions(session, id_of(entry)) if r is not revision
        ][:10] if in_work else [],
        # Four-eyes: whoever wrote or submitted what waits for approval is not offered the approval.
        "own_submission": four_eyes and principal.user_id is not None and principal.user_id in authors,
        "four_eyes": four_eyes,
        "REVISION_STATUS_LABELS": revisions.STATUS_WORDS,
    }


def _revision_form_values(session: Session, entry: ImplementationEntry, revision: Any) -> dict[str, Any]:
    """The edit form filled with what the revision proposes (the published values it leaves alone)."""
    state = revisions.proposed_state(session, entry, revision)
    values = _entry_form_values(
        cast(ImplementationEntry, SimpleNamespace(**state)),
        [SimpleNamespace(**{"licence_type_code": None, "notes": None, **m})
         for m in state.get("materials") or []],
        [SimpleNamespace(**{"basis": "", "reducible": False, **f}) for f in state.get("fees") or []],
    )
    # The revision's steps and questions, not the published rows.
    values["steps"] = element_form.step_values(
        [SimpleNamespace(**{"post": None, "days": None, "unit": None, **s})
         for s in state.get("steps") or []])
    values["faqs"] = element_form.faq_values([SimpleNamespace(**f) for f in state.get("faqs") or []])
    return values


@bp.route("/staff/entries/<int:entry_id>/edit", methods=["GET", "POST"])
def entry_edit(entry_id: int) -> Any:
    principal = _staff()
    session = _session()
    entry = _entry_for_view(session, principal, entry_id)
    if not permissions.can_edit_entry(principal, entry):
        raise Forbidden("无权修改其他部门或区划的实施清单")
    # A published entry is edited through its open revision, so the service stays online meanwhile.
    revision = None
    if entry.status == EntryStatus.PUBLISHED.value and entry.applicable:
        revision = revisions.open_revision_of(session, entry.id)
        if revision is None:
            flash("已发布的实施清单请先填写修订原因、发起修订；"
                  "修订审核通过前继续按已发布版本对外服务", "error")
            return _back_to_entry(id_of(entry))
        if revision.status not in revisions.EDITABLE_STATUSES:
            flash("修订已提交审核，不能修改；如需修改请先撤回修订", "error")
            return _back_to_entry(id_of(entry))
    elif entry.status != EntryStatus.DRAFT.value or not entry.applicable:
        flash("只有草稿状态的实施清单可以直接编辑；已发布的请发起修订", "error")
        return _back_to_entry(id_of(entry))
    errors: dict[str, list[str]] = {}
    message = None
    if request.method == "POST":
        values, fields, materials, fees, errors = _parse_entry_form(request.form)
        shown, element_fields = element_form.parse_elements(request.form)
        values |= shown
        values["steps"], steps = element_form.parse_steps(request.form)
        values["faqs"], faqs = element_form.parse_faqs(request.form)
        # The service runs even when the form's own parsing found errors, so every field's problem
        # is shown in one round; nothing is kept unless both found none.
        # A field the form could not read is left out; its error comes back with the service's.
        fields = {k: val for k, val in fields.items() if k not in errors}
        element_fields = {k: val for k, val in element_fields.items() if k not in errors}
        try:
            if revision is not None:
                revisions.update_revision(session, principal, id_of(entry), fields=fields | element_fields,
                                          materials=materials, fees=fees, steps=steps, faqs=faqs)
            else:
                entry_services.update_entry(session, principal, id_of(entry), fields=fields | element_fields,
                                            materials=materials, fees=fees, steps=steps, faqs=faqs)
        except Conflict as error:
            session.rollback()
            _flash_domain_error(error)
            return _back_to_entry(id_of(entry))
        except Invalid as error:
            for key, msgs in _field_errors(error.details).items():
                errors.setdefault(key, msgs)  # a field the form already flagged keeps its own message
        if not errors:
            done = "已保存修订；提交审核并通过后才替换发布版本" if revision is not None else "已保存"
            flash(done, "ok")
            return _back_to_entry(id_of(entry))
        session.rollback()
        message = "保存失败：表单中有需要修改的内容，请查看标红的字段"
        status = 422
    elif revision is not None:
        values = _revision_form_values(session, entry, revision)
        status = 200
    else:
        values = _entry_form_values(entry, entry_services.entry_materials(session, entry.id),
                                    entry_services.entry_fees(session, entry.id))
        values["steps"] = element_form.step_values(entry_elements.entry_steps(session, entry.id))
        values["faqs"] = element_form.faq_values(entry_elements.entry_faqs(session, entry.id))
        status = 200
    known = set(TEXT_FIELDS) | set(INT_FIELDS) | set(entry_elements.ELEMENT_FIELDS) | {
        "anticipate_unit", "promise_unit", "project_type", "online_depth", "result_delivery",
        "handle_forms", "tolerant_acceptance"}
    general = {k: v for k, v in errors.items() if k not in known and not re.match(r"^[mfsq]-\d+", k)}
    files = attachments.entry_attachments(session, entry.id)
    return render_template(
        "staff/entry_edit.html", entry=entry, values=values, errors=errors, general_errors=general,
        revision=revision,
        message=message, files=files, **_form_options(), **_common(),
    ), status


@bp.post("/staff/entries/<int:entry_id>/attachments")
def entry_attachment_upload(entry_id: int) -> Any:
    """Upload a 空白表格 / 示例样表 / 审批结果样本; it is then chosen in the form's file lists."""
    principal = _staff()
    session = _session()
    entry = _entry_for_view(session, principal, entry_id)
    upload = request.files.get("file")
    try:
        row = attachments.upload_attachment(
            session, principal, id_of(entry),
            filename=upload.filename if upload is not None else None,
            data=upload.read(attachments.MAX_ATTACHMENT_BYTES + 1) if upload is not None else None,
        )
    except Invalid as error:
        session.rollback()
        details = error.details if isinstance(error.details, dict) else {}
        flash("上传失败：" + "；".join(str(m) for m in details.get("file", [error.message])), "error")
    else:
        flash(f"已上传“{row.filename}”（文件编号 {row.id}），请在下方选择它并保存", "ok")
    return redirect(url_for("staff.entry_edit", entry_id=id_of(entry)) + "#files")


def _entry_action(entry_id: int, action: Any, done: str, *, reason_required: bool = False) -> Any:
    principal = _staff()
    session = _session()
    entry = entry_services.get_entry(session, entry_id)
    kwargs: dict[str, Any] = {}
    if reason_required:
        reason = request.form.get("reason", "").strip()
        if not reason:
            flash("请填写理由", "error")
            return _back_to_entry(id_of(entry))
        if len(reason) > 500:
            flash("理由不能超过 500 个字", "error")
            return _back_to_entry(id_of(entry))
        kwargs["reason"] = reason
    try:
        action(session, principal, entry.id, **kwargs)
    except (Invalid, Conflict) as error:
        session.rollback()
        _flash_domain_error(error)
        return _back_to_entry(id_of(entry))
    flash(done, "ok")
    return _back_to_entry(id_of(entry))


@bp.post("/staff/entries/<int:entry_id>/withdraw-claim")
def entry_withdraw_claim(entry_id: int) -> Any:
    principal = _staff()
    session = _session()
    entry = entry_services.get_entry(session, entry_id)
    name = entry.name
    reason = request.form.get("reason", "").strip()[:500] or None
    try:
        scope.withdraw_claim(session, principal, id_of(entry), reason)
    except (Invalid, Conflict) as error:
        session.rollback()
        _flash_domain_error(error)
        return _back_to_entry(id_of(entry))
    flash(f"已撤回对「{name}」的认领，该事项可重新认领", "ok")
    return redirect(url_for("staff.entry_list"))


@bp.post("/staff/entries/<int:entry_id>/submit")
def entry_submit(entry_id: int) -> Any:
    return _entry_action(entry_id, entry_services.submit_entry, "已提交审核")


@bp.post("/staff/entries/<int:entry_id>/approve")
def entry_approve(entry_id: int) -> Any:
    return _entry_action(entry_id, entry_services.approve_entry, "审核通过，已发布")


@bp.post("/staff/entries/<int:entry_id>/reject")
def entry_reject(entry_id: int) -> Any:
    return _entry_action(entry_id, entry_services.reject_entry, "已退回修改", reason_required=True)


@bp.post("/staff/entries/<int:entry_id>/retire")
def entry_retire(entry_id: int) -> Any:
    return _entry_action(entry_id, entry_services.retire_entry, "已停用", reason_required=True)


@bp.post("/staff/entries/<int:entry_id>/reopen")
def entry_reopen(entry_id: int) -> Any:
    """A retired entry back to draft; a published one is revised instead (catalog/revision_views.py)."""
    return _entry_action(entry_id, entry_services.reopen_entry, "已重新打开为草稿，可修改后提交审核")


@bp.post("/staff/entries/<int:entry_id>/no-contact")
def entry_no_contact(entry_id: int) -> Any:
    value = request.form.get("value") == "1"

    def _set(session: Session, principal: Principal, eid: int) -> Any:
        return entry_services.set_no_contact(session, principal, eid, value)

    return _entry_action(entry_id, _set, "已标记为不见面审批" if value else "已取消不见面审批标记")


@bp.post("/staff/entries/<int:entry_id>/align")
def entry_align(entry_id: int) -> Any:
    return _entry_action(entry_id, entry_services.align_entry, "已按基本目录更新名称、类型、依据和编码")


@bp.get("/staff/entries/<int:entry_id>/history")
def entry_history(entry_id: int) -> Any:
    principal = _staff()
    session = _session()
    entry = _entry_for_view(session, principal, entry_id)
    if not permissions.can_view_working_state(principal, entry):
        raise Forbidden("无权查看其他部门或区划实施清单的历史版本")
    versions = entry_services.entry_history(session, id_of(entry))
    audit = list(session.exec(
        select(AuditLog)
        .where(col(AuditLog.entity_type).in_(ENTRY_AUDIT_TYPES), col(AuditLog.entity_id) == str(entry.id))
        .order_by(col(AuditLog.id).desc())
        .limit(500)
    ))
    changes = history.version_changes([v.snapshot or {} for v in versions])
    item = session.get(CatalogItem, entry.item_id)
    depts, _divs = _names(session, [entry])
    names = {"department_id": depts, "item_id": {entry.item_id: item.name if item else ""}}
    return render_template(
        "staff/entry_history.html", entry=entry, audit=audit,
        versions=list(zip(versions, changes, strict=True)),
        audit_rows=[(a, history.audit_changes(a.old, a.new, names)) for a in audit],
        action_label=history.action_label, **_common(),
    )


ENTRY_AUDIT_TYPES = ("entry", "implementation_entry", "ImplementationEntry")


# ---------------------------------------------------------------- claims


def _claimable_departments(session: Session, principal: Principal) -> list[Department]:
    query = select(Department).order_by(Department.level, Department.division_code, Department.name)
    if principal.department_id is not None and not principal.is_admin:
        query = query.where(Department.id == principal.department_id)
    elif principal.division_code and not principal.is_admin:
        prefix = permissions.division_scope_prefix(principal.division_code) or principal.division_code
        query = query.where(col(Department.division_code).startswith(prefix))
    return [d for d in session.exec(query) if permissions.can_claim_for(principal, d)]


@bp.get("/staff/items/")
def item_list() -> Any:
    principal = _staff()
    session = _session()
    departments = _claimable_departments(session, principal)
    if not departments:
        raise Forbidden("当前账号没有可认领事项的实施主体")
    wanted = request.args.get("department_id", type=int)
    department = next((d for d in departments if d.id == wanted), departments[0])
    page, limit = page_args(default_limit=20)
    q = (request.args.get("q") or "").strip()[:100]
    task_type = request.args.get("task_type") or ""
    only_level = request.args.get("all_levels") != "1"
    # A district department sees the items it is competent for (主管部门) unless it asks for all.
    only_competent = department.level == "4" and request.args.get("all_competence") != "1"
    items, total = services.list_items(
        session, q=q or None, task_type=task_type if task_type in TASK_TYPES else None,
        level=department.level if only_level else None, page=page, limit=limit,
        competent_department_id=department.id if only_competent else None,
    )
    competent = dict(session.execute(
        sa.select(col(Department.id), col(Department.name)).where(
            col(Department.id).in_({i.competent_department_id for i in items if i.competent_department_id}))
    ).all()) if items else {}
    claimed: dict[int, ImplementationEntry] = {}
    if items:
        rows = session.exec(select(ImplementationEntry).where(
            ImplementationEntry.department_id == department.id,
            col(ImplementationEntry.item_id).in_([i.id for i in items]),
        ))
        claimed = {e.item_id: e for e in rows}
    pages = max(1, -(-total // limit))
    return render_template(
        "staff/items.html", items=items, total=total, page=page, pages=pages, departments=departments,
        department=department, claimed=claimed, competent=competent, is_admin=principal.is_admin,
        filters={"q": q, "task_type": task_type, "all_levels": "" if only_level else "1",
                 "all_competence": "" if only_competent else "1", "department_id": department.id},
        **_common(),
    )


def _claim_target(session: Session, item_id: int) -> tuple[CatalogItem, Department]:
    item = session.get(CatalogItem, item_id)
    if item is None:
        raise NotFound("基本目录事项不存在")
    dept_id = request.form.get("department_id", type=int)
    department = session.get(Department, dept_id) if dept_id and 0 < dept_id < MAX_DB_ID else None
    if department is None:
        raise Invalid("请选择实施主体", {"department_id": ["请选择实施主体"]})
    return item, department


def _back_to_items(department: Department) -> Any:
    target = request.form.get("next", "")
    if target.startswith("/staff/items/") and not target.startswith("//"):
        return redirect(target)
    return redirect(url_for("staff.item_list", department_id=department.id))


@bp.post("/staff/items/<int:item_id>/claim")
def item_claim(item_id: int) -> Any:
    principal = _staff()
    session = _session()
    item, department = _claim_target(session, item_id)
    override = request.form.get("override_reason", "").strip()[:500] or None
    try:
        entry = entry_services.claim_item(session, principal, item_id=id_of(item),
                                          department_id=id_of(department),
                                          division_code=department.division_code, override_reason=override)
    except (Invalid, Conflict) as error:
        session.rollback()
        _flash_domain_error(error)
        return _back_to_items(department)
    flash(f"已认领「{item.name}」，请完善实施要素后提交审核", "ok")
    return redirect(url_for("staff.entry_edit", entry_id=entry.id))


@bp.post("/staff/items/<int:item_id>/decline")
def item_decline(item_id: int) -> Any:
    principal = _staff()
    session = _session()
    item, department = _claim_target(session, item_id)
    reason = request.form.get("reason", "").strip()
    if not reason:
        flash("请填写不适用的理由", "error")
        return _back_to_items(department)
    try:
        entry_services.decline_item(session, principal, item_id=id_of(item), department_id=id_of(department),
                              reason=reason[:500], division_code=department.division_code,
                              override_reason=reason[:500])
    except (Invalid, Conflict) as error:
        session.rollback()
        _flash_domain_error(error)
        return _back_to_items(department)
    flash(f"已将「{item.name}」记录为本主体不适用", "ok")
    return _back_to_items(department)


# ---------------------------------------------------------------- consistency


@bp.get("/staff/consistency")
def consistency() -> Any:
    principal = _staff()
    session = _session()
    drifts = consistency_report(session)
    entries = {}
    if drifts:
        ids = [d.entry_id for d in drifts]
        entries = {e.id: e for e in session.exec(
            select(ImplementationEntry).where(col(ImplementationEntry.id).in_(ids))
        )}
    if not principal.is_admin:
        drifts = [d for d in drifts if d.entry_id in entries
                  and permissions.can_reopen_entry(principal, entries[d.entry_id])]
    depts, _divs = _names(session, [entries[d.entry_id] for d in drifts if d.entry_id in entries])
    editable = {i for i, e in entries.items() if permissions.can_edit_entry(principal, e)}
    return render_template("staff/consistency.html", drifts=drifts, entries=entries, depts=depts,
                           editable=editable, DRIFT_LABELS=DRIFT_LABELS, coverage=coverage(session),
                           UPPER_LEVELS=UPPER_LEVELS, **_common())


@bp.get("/staff/no-contact-gaps")
def no_contact_gaps() -> Any:
    principal = _staff()
    session = _session()
    summary = upper.no_contact_list_summary(session)
    gaps = upper.no_contact_gaps(session)
    if not principal.is_admin and gaps:
        visible = {e.id: e for e in session.exec(
            select(ImplementationEntry).where(col(ImplementationEntry.id).in_([g.entry_id for g in gaps]))
        )}
        gaps = [g for g in gaps
                if g.entry_id in visible and permissions.can_reopen_entry(principal, visible[g.entry_id])]
    dept_names = dict(session.execute(
        sa.select(col(Department.id), col(Department.name)).where(
            col(Department.id).in_({g.department_id for g in gaps}))
    ).all()) if gaps else {}
    return render_template("staff/no_contact_gaps.html", summary=summary, gaps=gaps, depts=dept_names,
                           **_common())


DRIFT_LABELS = {
    "name": "名称", "task_type": "事项类型", "legal_basis": "设定依据", "catalog_code": "基本编码",
}


# ---------------------------------------------------------------- admin


@bp.get("/admin/")
def admin_home() -> Any:
    require_admin()
    links = [("/admin/users", "用户与 API 令牌"), ("/admin/departments", "实施主体（部门、镇街、村社区）"),
             ("/staff/consistency", "三级四同一致性报告"), ("/admin/quality", "事项要素质量检查"),
             ("/staff/no-contact-gaps", "不见面审批标准清单对照"), ("/admin/dashboard", "统计看板"),
             ("/admin/reports/", "年度报告"), ("/admin/bundles/", "套餐式服务（一件事）"),
             ("/admin/search/aliases", "检索同义词"), ("/admin/sync/", "证照同步与死信队列"),
             ("/admin/licence-grants", "证照管理权限（按部门和证照类型授予、收回）"),
             ("/admin/review-settings", "审核设置（双人审核）")]
    return render_template("staff/admin_home.html", links=links)


def _users_page(session: Session, *, values: dict[str, Any] | None = None,
                errors: dict[str, list[str]] | None = None, message: str | None = None,
                token: dict[str, Any] | None = None, status: int = 200) -> Any:
    users = list(session.exec(select(User).order_by(User.role, User.username)))
    tokens: dict[int, list[ApiToken]] = {}
    for t in session.exec(select(ApiToken).order_by(col(ApiToken.id))):
        tokens.setdefault(t.user_id, []).append(t)
    departments = list(session.exec(select(Department).order_by(Department.level, Department.name)))
    dept_names = {d.id: d.name for d in departments}
    divisions = list(session.exec(
        select(Division).where(col(Division.level).in_(["town", "village"])).order_by(col(Division.code))
    ))
    response = make_response(render_template(
        "staff/admin_users.html", users=users, tokens=tokens, departments=departments,
        dept_names=dept_names, divisions=divisions, div_names={d.code: d.name for d in divisions},
        values=values or {}, errors=errors or {}, message=message, token=token, roles=list(Role),
        **_common(),
    ), status)
    return _no_store(response)


@bp.get("/admin/users")
def admin_users() -> Any:
    require_admin()
    return _users_page(_session())


@bp.post("/admin/users")
def admin_user_create() -> Any:
    principal = require_admin()
    session = _session()
    form = request.form
    values = {k: form.get(k, "").strip() for k in ("username", "display_name", "role", "department_id",
                                                    "division_code")}
    department_id: int | None = None
    if values["department_id"]:
        try:
            department_id = int(values["department_id"])
        except ValueError:
            return _users_page(session, values=values, errors={"department_id": ["请选择所属部门"]},
                               message="请修改标红的字段", status=422)
    try:
        user, generated = users.create_user(session, principal, users.NewUser(
            username=values["username"], display_name=values["display_name"], role=values["role"],
            password=form.get("password", "") or None, department_id=department_id,
            division_code=values["division_code"] or None))
    except DomainError as error:
        session.rollback()
        message = "请修改标红的字段" if isinstance(error, Invalid) else error.message
        return _users_page(session, values=values, errors=_field_errors(error.details), message=message,
                           status=error.status)
    flash(f"已创建用户 {user.username}", "ok")
    if generated:
        shown = {"kind": "password", "username": user.username, "secret": generated}
        return _users_page(session, token=shown)
    return redirect(url_for("staff.admin_users"))


@bp.post("/admin/users/<int:user_id>/active")
def admin_user_active(user_id: int) -> Any:
    principal = require_admin()
    session = _session()
    active = request.form.get("value") == "1"
    try:
        user = users.set_user_active(session, principal, user_id, active)
    except Conflict as error:
        flash(error.message, "error")
        return redirect(url_for("staff.admin_users"))
    flash(f"已{'启用' if active else '停用'}用户 {user.username}", "ok")
    return redirect(url_for("staff.admin_users"))


@bp.post("/admin/users/<int:user_id>/tokens")
def admin_token_issue(user_id: int) -> Any:
    principal = require_admin()
    session = _session()
    token, plain = users.issue_token(session, principal, user_id, request.form.get("name", ""))
    user = session.get(User, token.user_id)
    return _users_page(session, token={"kind": "token", "username": user.username if user else "",
                                       "secret": plain, "name": token.name})


@bp.post("/admin/tokens/<int:token_id>/revoke")
def admin_token_revoke(token_id: int) -> Any:
    principal = require_admin()
    token = users.revoke_token(_session(), principal, token_id)
    flash(f"已吊销令牌 {token.prefix}…", "ok")
    return redirect(url_for("staff.admin_users"))


def _departments_page(session: Session, *, values: dict[str, Any] | None = None,
                      errors: dict[str, list[str]] | None = None, message: str | None = None,
                      status: int = 200) -> Any:
    page, limit = page_args(default_limit=50, max_limit=200)
    level = request.args.get("level") or ""
    query = select(Department)
    count = select(sa.func.count()).select_from(Department)
    if level in ("4", "5", "6"):
        query = query.where(Department.level == level)
        count = count.where(Department.level == level)
    total = int(session.exec(count).one())
    departments = list(session.exec(
        query.order_by(Department.level, Department.division_code, Department.name)
        .offset((page - 1) * limit).limit(limit)
    ))
    district = settings().district_code
    divisions = list(session.exec(
        select(Division)
        .where(col(Division.level).in_(["county", "town", "village"]))
        .where(col(Division.code).startswith(district))
        .order_by(Division.code)
    ))
    return render_template(
        "staff/admin_departments.html", departments=departments, divisions=divisions,
        div_names={d.code: d.name for d in divisions}, total=total, page=page,
        pages=max(1, -(-total // limit)), level=level, values=values or {}, errors=errors or {},
        message=message, **_common(),
    ), status


@bp.get("/admin/departments")
def admin_departments() -> Any:
    require_admin()
    return _departments_page(_session())


@bp.post("/admin/departments")
def admin_department_create() -> Any:
    principal = require_admin()
    session = _session()
    values = {k: request.form.get(k, "").strip() for k in ("name", "uscc", "level", "division_code")}
    values["uscc"] = values["uscc"].upper()
    errors: dict[str, list[str]] = {}
    if not values["name"] or len(values["name"]) > 100:
        errors["name"] = ["请填写名称（不超过 100 字）"]
    if values["level"] not in ("4", "5", "6"):
        errors["level"] = ["请选择层级"]
    if not values["division_code"]:
        errors["division_code"] = ["请选择所在区划"]
    if errors:
        return _departments_page(session, values=values, errors=errors, message="请修改标红的字段",
                                 status=422)
    try:
        department = services.create_department(session, principal, name=values["name"], uscc=values["uscc"],
                                                level=values["level"], division_code=values["division_code"])
    except DomainError as error:
        session.rollback()
        return _departments_page(session, values=values, errors=_field_errors(error.details),
                                 message=error.message, status=error.status)
    if department.uscc_warning:
        flash(f"已创建「{department.name}」。注意：{department.uscc_warning}", "warn")
    else:
        flash(f"已创建「{department.name}」", "ok")
    return redirect(url_for("staff.admin_departments", level=department.level))


# ---------------------------------------------------------------- wiring


def _login_redirect(error: DomainError) -> Any:
    """Anonymous visitors of a staff page are sent to the login form (then back)."""
    from core.web import error_response, wants_json

    if error.status == 401 and not wants_json() and request.method == "GET":
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return error_response(error.status, error.code, error.message, error.details)


bp.register_error_handler(Unauthorized, _login_redirect)


def _principal_for_templates() -> dict[str, Any]:
    """Lets base.html show the staff menu on every page, including the public ones."""
    if has_request_context() and "principal" not in g:
        try:
            current_principal()
        except (DomainError, sa.exc.SQLAlchemyError):
            return {}
    return {}


@bp.app_template_filter("pager_query")
def _pager_query(args: dict[str, Any], page: int) -> str:
    """The current filters as a query string, with ``page`` replaced."""
    params = {k: v for k, v in args.items() if v not in ("", None)}
    params["page"] = page
    return urlencode(params)


@bp.app_template_filter("pretty_json")
def _pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
    app.context_processor(_principal_for_templates)
