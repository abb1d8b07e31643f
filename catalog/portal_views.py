"""Public portal (no login): home with search, browse by town/village, department and theme,
results with facets and highlighted matches, the entry detail page; and the alias admin page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, flash, make_response, redirect, render_template, request, url_for
from sqlmodel import col

from catalog.elements import DEPTH_LEVELS, NO_CONTACT_CLASSES
from catalog.models import (
    MATERIAL_FORMS,
    ONLINE_DEPTH,
    PROJECT_TYPES,
    RESULT_DELIVERY,
    TASK_TYPES,
    TIME_UNITS,
    USE_LEVELS,
    Department,
    Division,
    EntryStatus,
    ImplementationEntry,
)
from catalog.search.aliases import delete_alias, save_alias
from catalog.search.elsewhere import delete_elsewhere, find_elsewhere, list_elsewhere, save_elsewhere
from catalog.search.misses import top_misses
from catalog.search.query import MAX_PAGE
from catalog.search.text import MAX_QUERY_CHARS
from catalog.search_api import run_search, search_scope
from catalog.search_models import SearchEntry
from core.db import table_of
from core.errors import DomainError, Invalid, NotFound
from core.web import db_session, form_id, limiter, require_admin, settings

bp = Blueprint("portal", __name__, template_folder="templates")


def _district() -> str:
    """The district this portal serves (6-digit GB/T 2260 code from Settings, e.g. 321203)."""
    return settings().district_code


# Browse by theme: a theme is a list of words searched together (one click away from results).
THEMES: list[tuple[str, str, str]] = [
    ("社保就业", "社会保险", "参保、养老金、失业保险、社保卡"),
    ("医疗卫生", "医疗", "医保、医师、卫生许可"),
    ("户籍证件", "户口", "户口、身份证、居住证"),
    ("婚育收养", "婚姻登记", "结婚、离婚、出生医学证明"),
    ("开办企业", "设立登记", "公司、个体工商户、营业执照"),
    ("餐饮食品", "食品", "食品经营、小作坊、健康证"),
    ("交通出行", "道路运输", "驾驶证、道路运输、出租车"),
    ("教育入学", "入学", "入学、学籍、教师资格"),
    ("住房保障", "住房", "公租房、租赁补贴、商品房"),
    ("残疾人服务", "残疾人", "残疾人证、补贴、康复"),
    ("养老服务", "养老", "养老保险、老年人优待"),
    ("社会救助", "救助", "低保、特困、临时救助"),
]


def _args() -> dict[str, Any]:
    a = request.args

    def _int(name: str, default: int, high: int) -> int:
        try:
            return min(max(int(a.get(name, default)), 1), high)
        except (TypeError, ValueError):
            return default

    return {
        "q": a.get("q", "")[: MAX_QUERY_CHARS * 2],
        "level": a.get("level") or None,
        "division": a.get("division") or None,
        "department": a.get("department") or None,
        "type": a.get("type") or None,
        "no_contact": a.get("no_contact") or None,
        "depth": a.get("depth") or None,
        "page": _int("page", 1, MAX_PAGE),
        "limit": _int("limit", 10, 50),
    }


PLACE_COOKIE = "place"
PLACE_COOKIE_MAX_AGE = 365 * 24 * 3600


def _chosen_place() -> tuple[str | None, bool]:
    """The citizen's place: from the picker's ``place`` field when the form was sent (empty = none),
    else from the cookie; and whether the cookie must be updated. A malformed code counts as none."""
    if "place" in request.args:
        raw, changed = request.args.get("place", ""), True
    else:
        raw, changed = request.cookies.get(PLACE_COOKIE, ""), False
    code = raw.strip()
    if not (code.isdigit() and len(code) == 12 and code.startswith(_district())):
        code = ""
    return code or None, changed


def _place_options(session: Any) -> list[tuple[Division, list[Division]]]:
    """The picker's choices: every town/street of the district with its villages/communities."""
    dv = table_of(Division)
    towns: list[tuple[Division, list[Division]]] = []
    by_code: dict[str, list[Division]] = {}
    for d in session.execute(
        sa.select(Division)
        .where(dv.c.code.like(_district() + "%"), dv.c.level.in_(("town", "village")))
        .order_by(dv.c.code)
    ).scalars():
        if d.level == "town":
            by_code[d.code] = []
            towns.append((d, by_code[d.code]))
        elif d.parent_code in by_code:
            by_code[d.parent_code].append(d)
    return towns


def _link(args: dict[str, Any], **changes: Any) -> str:
    merged = {k: v for k, v in {**args, **changes}.items() if k not in ("place", "group")}
    if "page" not in changes:
        merged["page"] = 1
    clean = {
        k: v
        for k, v in merged.items()
        if v not in (None, "", False) and not (k == "page" and v == 1) and not (k == "limit" and v == 10)
    }
    return url_for("portal.search_page") + ("?" + urlencode(clean) if clean else "")


@bp.get("/")
def home() -> Any:
    session = db_session()
    e = table_of(SearchEntry)
    total = session.execute(sa.select(sa.func.count()).select_from(e)).scalar_one()
    towns = _towns(session)
    depts = session.execute(
        sa.select(e.c.department_id, e.c.department_name, sa.func.count())
        .where(e.c.level == "4", e.c.division_code == _district() + "000000")
        .group_by(e.c.department_id, e.c.department_name)
        .order_by(sa.func.count().desc(), e.c.department_id)
    ).all()
    return render_template(
        "portal/home.html",
        total=total,
        towns=towns,
        departments=depts,
        themes=THEMES,
        chosen_place=_chosen_place()[0],
        place_options=_place_options(session),
    )


def _towns(session: Any) -> list[tuple[Division, int]]:
    towns = list(
        session.execute(
            sa.select(Division)
            .where(col(Division.parent_code) == _district() + "000000")
            .order_by(col(Division.code))
        ).scalars()
    )
    e = table_of(SearchEntry)
    counts: dict[str, int] = {}
    for code, n in session.execute(
        sa.select(e.c.division_code, sa.func.count())
        .where(e.c.division_code.like(_district() + "%"), e.c.level != "4")
        .group_by(e.c.division_code)
    ):
        counts[code[:9]] = counts.get(code[:9], 0) + n
    return [(t, counts.get(t.code[:9], 0)) for t in towns]


@bp.get("/divisions")
def divisions_page() -> Any:
    """Browse by town/street and village/community."""
    session = db_session()
    towns = _towns(session)
    villages: dict[str, list[Division]] = {}
    dv = table_of(Division)
    for v in session.execute(
        sa.select(Division)
        .where(dv.c.code.like(_district() + "%"), dv.c.level == "village")
        .order_by(dv.c.code)
    ).scalars():
        villages.setdefault(v.parent_code or "", []).append(v)
    return render_template("portal/divisions.html", towns=towns, villages=villages)


@bp.get("/search")
@limiter.limit("120/minute")
def search_page() -> Any:
    # The token first: the alias table, the elsewhere list and facet labels are then read once per token.
    with search_scope():
        return _search_page()


def _search_page() -> Any:
    chosen, remember = _chosen_place()
    args = {**_args(), "group": "service", "place": chosen}
    error = None
    try:
        result = run_search(args)
    except Invalid as exc:
        error = exc.message + "：" + "；".join(f"{m[0]}" for m in exc.details.values())
        args = {**args, "level": None, "division": None, "department": None, "type": None, "no_contact": None,
                "depth": None}
        result = run_search(args)
    pages = max(1, -(-result.total // result.limit))
    place, town = _place(db_session(), args["division"])
    page = render_template(
        "portal/search.html",
        services=result.services,
        chosen_place=chosen,
        place_options=_place_options(db_session()),
        result=result,
        elsewhere=find_elsewhere(db_session(), args["q"]) if args["q"] else [],
        place=place,
        place_town=town,
        args=args,
        link=_link,
        error=error,
        pages=pages,
        type_labels=TASK_TYPES,
        level_labels=USE_LEVELS,
        themes=THEMES,
    )
    response = make_response(page)
    if remember:
        if chosen:
            # Not a secret, only a preference; HttpOnly because no script needs it (the picker is a form).
            response.set_cookie(
                PLACE_COOKIE,
                chosen,
                max_age=PLACE_COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure,
            )
        else:
            response.delete_cookie(PLACE_COOKIE, httponly=True, samesite="Lax", secure=request.is_secure)
    return response


def _place(session: Any, code: str | None) -> tuple[Division | None, Division | None]:
    """The division a search is filtered to (a 6-digit county code means the county itself) and, when
    it is a village or community, its town: the page names the place and, for a village with no
    entries of its own, links to its town's entries instead of showing an unexplained empty list."""
    if not code or not code.isdigit() or len(code) not in (6, 12):
        return None, None
    place = session.get(Division, code if len(code) == 12 else code + "000000")
    if place is None or place.level != "village" or not place.parent_code:
        return place, None
    return place, session.get(Division, place.parent_code)


@bp.get("/entries/<string:task_code>")
def entry_detail(task_code: str) -> Any:
    if len(task_code) > 31:
        abort(404)
    session = db_session()
    entry = (
        session.execute(sa.select(ImplementationEntry).where(col(ImplementationEntry.task_code) == task_code))
        .scalars()
        .first()
    )
    if entry is None or entry.status != EntryStatus.PUBLISHED.value or not entry.applicable:
        raise NotFound("该事项不存在或尚未发布")
    from catalog import elements
    from catalog.entries import entry_fees, entry_materials
    from catalog.entry_elements import entry_faqs, entry_steps

    dept = session.get(Department, entry.department_id)
    division = session.get(Division, entry.division_code)
    return render_template(
        "portal/entry.html",
        entry=entry,
        dept=dept,
        division=division,
        materials=entry_materials(session, entry.id),
        fees=entry_fees(session, entry.id),
        type_label=TASK_TYPES.get(entry.task_type, entry.task_type),
        level_label=USE_LEVELS.get(entry.level, ""),
        depth_label=DEPTH_LEVELS.get(entry.depth_level) if entry.depth_level else None,
        # The badge only where the flag and the rule's class agree (never from data nobody recorded).
        no_contact_label=(
            NO_CONTACT_CLASSES[entry.no_contact_class]
            if entry.no_contact and entry.no_contact_class in ("full", "partial")
            else None
        ),
        time_units=TIME_UNITS,
        project_types=PROJECT_TYPES,
        depth_labels=ONLINE_DEPTH,
        delivery_labels=RESULT_DELIVERY,
        material_forms=MATERIAL_FORMS,
        depth=[c for c in (entry.online_depth or "").split(",") if c],
        delivery=[c for c in (entry.result_delivery or "").split(",") if c],
        steps=entry_steps(session, entry.id),
        faqs=entry_faqs(session, entry.id),
        el=elements,
        missing=elements.MISSING_PUBLIC,
    )


@bp.get("/files/<int:attachment_id>")
def attachment_file(attachment_id: int) -> Any:
    """An uploaded 空白表格 / 示例样表 / 审批结果样本, always as a download: the type found when it was
    checked on upload, never sniffed by the browser, never rendered or run in the portal's origin."""
    from catalog.attachments import content_type, get_attachment, may_see_file
    from core.web import current_principal

    if attachment_id >= 2**31:
        raise NotFound("文件不存在")
    session = db_session()
    principal = current_principal()
    row = get_attachment(session, principal, attachment_id)
    entry = session.get(ImplementationEntry, row.entry_id)
    if entry is None or not may_see_file(session, principal, entry, attachment_id):
        raise NotFound(f"文件 {attachment_id} 不存在")
    response = make_response(row.data)
    response.headers["Content-Type"] = content_type(row.kind)
    ascii_name = f"attachment-{row.id}.{row.kind}"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{quote(row.filename, safe="")}'
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


# ----------------------------------------------------------------------------- alias admin


@bp.get("/admin/search/aliases")
def aliases_page() -> Any:
    require_admin()
    session = db_session()
    from catalog.search_models import SearchAlias

    aliases = list(session.execute(sa.select(SearchAlias).order_by(SearchAlias.alias)).scalars())
    edit_id = request.args.get("edit", type=int)
    editing = next((a for a in aliases if a.id == edit_id), None)
    return render_template(
        "portal/aliases.html",
        aliases=aliases,
        misses=top_misses(session, 50),
        editing=editing,
        prefill=request.args.get("alias", "")[:50],
        errors={},
        form=None,
    )


@bp.post("/admin/search/aliases")
def aliases_save() -> Any:
    principal = require_admin()
    session = db_session()
    form = request.form
    alias_id = form_id("id")
    if alias_id is None and (form.get("id") or "").strip():  # a garbled id edits nothing, creates nothing
        raise NotFound("别名不存在")
    try:
        row = save_alias(
            session,
            principal,
            form.get("alias", ""),
            form.get("targets", ""),
            form.get("note", ""),
            alias_id=alias_id,
        )
    except DomainError as exc:
        from catalog.search_models import SearchAlias

        aliases = list(session.execute(sa.select(SearchAlias).order_by(SearchAlias.alias)).scalars())
        return render_template(
            "portal/aliases.html",
            aliases=aliases,
            misses=top_misses(session, 50),
            editing=None,
            prefill="",
            errors=exc.details,
            form=form,
            message=exc.message,
        ), 422
    flash(f"已保存别名「{row.alias}」", "success")
    return redirect(url_for("portal.aliases_page"))


@bp.post("/admin/search/aliases/<int:alias_id>/delete")
def aliases_delete(alias_id: int) -> Any:
    principal = require_admin()
    session = db_session()
    if alias_id >= 2**31:
        raise NotFound("别名不存在")
    row = delete_alias(session, principal, alias_id)
    flash(f"已删除别名「{row.alias}」", "success")
    return redirect(url_for("portal.aliases_page"))


# ----------------------------------------------------------------------------- services handled elsewhere


def _elsewhere_page(
    editing: Any = None, errors: Any = None, form: Any = None, message: str | None = None
) -> str:
    return render_template(
        "portal/elsewhere.html",
        services=list_elsewhere(db_session()),
        editing=editing,
        errors=errors or {},
        form=form,
        message=message,
    )


@bp.get("/admin/search/elsewhere")
def elsewhere_page() -> Any:
    require_admin()
    edit_id = request.args.get("edit", type=int)
    editing = next((s for s in list_elsewhere(db_session()) if s.id == edit_id), None)
    return _elsewhere_page(editing=editing)


@bp.post("/admin/search/elsewhere")
def elsewhere_save() -> Any:
    principal = require_admin()
    form = request.form
    service_id = form_id("id")
    if service_id is None and (form.get("id") or "").strip():  # a garbled id edits nothing, creates nothing
        raise NotFound("该外部办理服务不存在")
    try:
        row = save_elsewhere(db_session(), principal, form.to_dict(), service_id=service_id)
    except Invalid as exc:
        return _elsewhere_page(errors=exc.details, form=form, message=exc.message), 422
    flash(f"已保存「{row.name}」", "success")
    return redirect(url_for("portal.elsewhere_page"))


@bp.post("/admin/search/elsewhere/<int:service_id>/delete")
def elsewhere_delete(service_id: int) -> Any:
    principal = require_admin()
    if service_id >= 2**31:
        raise NotFound("该外部办理服务不存在")
    row = delete_elsewhere(db_session(), principal, service_id)
    flash(f"已删除「{row.name}」", "success")
    return redirect(url_for("portal.elsewhere_page"))


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
