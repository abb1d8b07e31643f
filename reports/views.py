"""Pages of the reports package: the administrators' dashboard, the annual report, template tables,
case-statistics import, scenario bundles (admin editing and the public page), and a small JSON API.

All figures come from reports.services / reports.snapshot; this module parses requests and renders.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from flask import Blueprint, Flask, Response, current_app, flash, redirect, render_template, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint as ApiBlueprint

from core.errors import DomainError, Invalid, NotFound
from core.exports import csv_text, xlsx_bytes
from core.schemas import ErrorSchema
from core.types import CHINA_TZ, utcnow
from core.web import current_principal, db_session, error_summary, require_admin, require_login
from reports import (
    annual_report,
    bundles,
    entered_figures,
    metrics,
    narratives,
    report_figures,
    services,
    snapshot,
    snapshot_compare,
    template_tables,
)
from reports import cache as cache_module
from reports.cache import MetricsCache
from reports.models import Snapshot
from reports.schemas import (
    CaseStatsResultSchema,
    CaseStatsUploadSchema,
    EnteredFigureListSchema,
    EnteredFigureUpdateSchema,
    MetricsQueryArgsSchema,
    MetricsResponseSchema,
    NarrativeListSchema,
    NarrativeUpdateSchema,
)

bp = Blueprint("reports", __name__, template_folder="templates", url_prefix="")
api_blp = ApiBlueprint(
    "reports_api",
    __name__,
    url_prefix="/api/v1/reports",
    description="覆盖率指标与办件统计 (coverage metrics and case statistics)",
)

CHARTS = {name for name, _t in annual_report.CHART_SPECS}


def _year_arg() -> int:
    raw = request.args.get("year") or ""
    if not raw:
        # The latest year that holds recorded data (case statistics, licences, template tables), so
        # the dashboard does not open on an empty year while the data sit in another one.
        return services.latest_year_with_data(db_session(), utcnow().astimezone(CHINA_TZ).year)
    try:
        year = int(raw)
    except ValueError:
        raise Invalid("年份应为整数", {"year": ["年份应为整数"]}) from None
    services.check_year(year)
    return year


def _as_of_arg(year: int) -> datetime:
    raw = request.args.get("as_of") or ""
    if not raw:
        return services.default_as_of(year).replace(second=0, microsecond=0)
    try:
        day = datetime.strptime(raw, "%Y-%m-%d")  # noqa: DTZ007 (zone added below)
    except ValueError:
        raise Invalid("统计日应为 YYYY-MM-DD", {"as_of": ["统计日应为 YYYY-MM-DD"]}) from None
    return day.replace(tzinfo=CHINA_TZ) + timedelta(days=1, microseconds=-1)


def _metrics_cache() -> MetricsCache:
    cache: MetricsCache = current_app.extensions[cache_module.EXTENSION]
    return cache


def _results(year: int, as_of: datetime) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        return {k: r.as_dict() for k, r in services.compute_metrics(db_session(), year, as_of).items()}

    result: dict[str, Any] = _metrics_cache().get_or_compute((year, as_of.isoformat()), compute)
    return result


def clear_cache() -> None:
    """Figures changed (case statistics, bundles): the next page computes them afresh."""
    _metrics_cache().clear()


def _pct(r: dict[str, Any]) -> str | None:
    if r.get("missing") or not r.get("denominator"):
        return None
    return f"{100 * r['numerator'] / r['denominator']:.1f}%"


# ---- dashboard ---------------------------------------------------------------------------------------

HEADLINE_RATES = [
    "no_contact_rate",
    "full_online_rate",
    "at_most_once_rate",
    "online_available_rate",
    "online_case_share",
    "on_time_rate",
    "licence_department_coverage",
    "departments_online",
    "claim_coverage_level_4",
    "claim_coverage_level_5",
    "claim_coverage_level_6",
    "drift_rate",
]
HEADLINE_COUNTS = [
    "cases_received",
    "licences_issued",
    "licences_pushed",
    "sync_events_sent",
    "push_failures",
    "items_claimed_level_5",
    "items_claimed_level_6",
    "bundles_published",
    "licence_types",
]
# The figure shown under a headline count: its cumulative (累计) twin, or the entries behind an item count.
COUNT_COMPANIONS = {
    "cases_received": ("cases_received_cumulative", "累计"),
    "licences_issued": ("licences_issued_cumulative", "累计"),
    "licences_pushed": ("licences_pushed_cumulative", "累计"),
    "sync_events_sent": ("sync_events_sent_cumulative", "累计"),
    "items_claimed_level_5": ("entries_claimed_level_5", "涉及实施清单"),
    "items_claimed_level_6": ("entries_claimed_level_6", "涉及实施清单"),
}
DASHBOARD_TABLES = [
    "depth_distribution",
    "entries_by_department",
    "entries_by_town",
    "entries_by_village",
    "cases_by_month",
    "cases_by_department",
    "licence_events",
    "licence_coverage_by_department",
    "push_lag",
    "sync_by_month",
]


def _companion(results: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, str]:
    """The figure under a headline count and its caption, or (None, "")."""
    if key not in COUNT_COMPANIONS:
        return None, ""
    other, caption = COUNT_COMPANIONS[key]
    return results[other], caption


@bp.get("/admin/dashboard")
def dashboard() -> Any:
    require_admin()
    year = _year_arg()
    as_of = _as_of_arg(year)
    results = _results(year, as_of)
    return render_template(
        "reports/dashboard.html",
        year=year,
        as_of=as_of,
        as_of_day=as_of.astimezone(CHINA_TZ).date(),
        rates=[(results[k], _pct(results[k])) for k in HEADLINE_RATES],
        counts=[(results[k], *_companion(results, k)) for k in HEADLINE_COUNTS],
        six=[
            (results[f"no_contact_rate_{t}"], _pct(results[f"no_contact_rate_{t}"]))
            for t in metrics.SIX_TYPES
        ],
        tables=[results[k] for k in DASHBOARD_TABLES],
        charts=annual_report.CHART_SPECS,
        version=metrics.DEFINITIONS_VERSION,
        query={"year": year, "as_of": request.args.get("as_of", "")},
        case_sources=services.case_sources(db_session(), year, as_of),
    )


@bp.get("/admin/dashboard/chart/<name>.png")
def dashboard_chart(name: str) -> Any:
    require_admin()
    if name not in CHARTS:
        raise NotFound("没有这个图表")
    year = _year_arg()
    png = annual_report.chart_png(name, _results(year, _as_of_arg(year)))
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=30"})


KIND_LABELS = {
    "entry": "实施清单事项",
    "item": "基本目录事项",
    "department": "部门",
    "licence": "电子证照",
    "bundle": "套餐式服务",
    "licence_type": "证照类型",
}


@bp.get("/admin/dashboard/metric/<key>")
def drill_down(key: str) -> Any:
    """The items behind a figure: a rate's numerator, denominator or gap; a count; a table row."""
    require_admin()
    if key not in metrics.BY_KEY:
        raise NotFound("没有这个指标")
    year = _year_arg()
    as_of = _as_of_arg(year)
    result = _results(year, as_of)[key]
    part = request.args.get("part", "num")
    row_code = request.args.get("row")
    title = result["label"]
    if result["type"] == "rate":
        num, den = set(result["numerator_ids"]), set(result["denominator_ids"])
        if key.startswith("claim_coverage_level_") and key != "claim_coverage_level_4":
            ids = num if part == "num" else den  # denominator_ids hold the unanswered items here
            title += "·已认领事项" if part == "num" else "·尚有主体未认领的事项"
        else:
            ids = {"num": num, "den": den, "gap": den - num}.get(part, num)
            title += {"num": "·分子", "den": "·分母", "gap": "·未达标"}.get(part, "·分子")
    elif result["type"] == "count":
        ids = set(result["ids"])
    else:
        row = next((r for r in result["rows"] if r["code"] == row_code), None)
        if row is None:
            raise NotFound("表中没有这一行")
        ids = set(row["ids"])
        title += f"·{row['label']}"
    session = db_session()
    kind = result["kind"]
    loaders = {
        "entry": services.entries_by_ids,
        "item": services.items_by_ids,
        "department": services.departments_by_ids,
    }
    rows = loaders[kind](session, ids) if kind in loaders else []
    if kind == "bundle":
        rows = [{"id": b.id, "name": b.name} for b in bundles.list_bundles(session) if b.id in ids]
    return render_template(
        "reports/drill_down.html",
        title=title,
        result=result,
        rows=rows,
        kind=kind,
        kind_label=KIND_LABELS.get(kind, kind),
        total=len(ids),
        year=year,
        as_of_day=as_of.astimezone(CHINA_TZ).date(),
        definition=metrics.BY_KEY[key],
        task_types=metrics.TYPE_LABELS,
    )


def _export_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    if result["type"] == "table":
        header = ["代码", "名称", *result["columns"]]
        return header, [[r["code"], r["label"], *r["values"]] for r in result["rows"]]
    if result["type"] == "rate":
        return ["指标", "分子", "分母", "比率"], [
            [result["label"], result["numerator"], result["denominator"], _pct(result) or "缺少数据"]
        ]
    return ["指标", "数值"], [[result["label"], result["value"] if not result.get("missing") else "缺少数据"]]


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for key in HEADLINE_RATES + [f"no_contact_rate_{t}" for t in metrics.SIX_TYPES]:
        r = results[key]
        rows.append(
            {
                "code": key,
                "label": r["label"],
                "values": [r["numerator"], r["denominator"], _pct(r) or "缺少数据"],
                "ids": [],
            }
        )
    for key in HEADLINE_COUNTS + [c for c, _caption in COUNT_COMPANIONS.values()]:
        r = results[key]
        rows.append(
            {
                "code": key,
                "label": r["label"],
                "values": [r["value"] if not r.get("missing") else "缺少数据", "", ""],
                "ids": [],
            }
        )
    return {
        "type": "table",
        "key": "summary",
        "label": "指标汇总",
        "columns": ["分子/数值", "分母", "比率"],
        "rows": rows,
    }


@bp.get("/admin/dashboard/export/<key>.<fmt>")
def export_table(key: str, fmt: str) -> Any:
    require_admin()
    if fmt not in ("csv", "xlsx"):
        raise NotFound("仅支持 CSV 和 XLSX")
    year = _year_arg()
    results = _results(year, _as_of_arg(year))
    if key == "summary":
        result = _summary(results)
    elif key in results:
        result = results[key]
    else:
        raise NotFound("没有这个表")
    header, rows = _export_rows(result)
    filename = f"{key}-{year}.{fmt}"
    if fmt == "csv":
        return Response(
            csv_text(rows, header),
            mimetype="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )
    return Response(
        xlsx_bytes(result["label"], rows, header),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


# ---- annual report -------------------------------------------------------------------------------


@bp.get("/admin/reports/")
def reports_home() -> Any:
    require_admin()
    session = db_session()
    this_year = utcnow().astimezone(CHINA_TZ).year
    snaps = snapshot.list_snapshots(session)
    years = sorted(
        {this_year, this_year - 1, *(s.year for s in snaps), *services.case_stat_years(session)},
        reverse=True,
    )
    latest: dict[int, Snapshot] = {}
    for s in snaps:
        latest.setdefault(s.year, s)
    tables = {y: services.template_table_values(session, y) for y in years}
    return render_template(
        "reports/reports_home.html",
        years=years,
        latest=latest,
        snaps=snaps,
        tables=tables,
        this_year=this_year,
        titles=template_tables.TABLE_TITLES,
        columns=services.CASE_COLUMNS,
    )


def _year_path(year: int) -> int:
    services.check_year(year)
    return year


def _freeze(year: int) -> Any:
    """Freeze ``year``: a year-end snapshot for a finished year, a preliminary one for the running year."""
    actor = require_admin()
    this_year = utcnow().astimezone(CHINA_TZ).year
    preliminary = year == this_year
    try:
        snap = snapshot.create_snapshot(db_session(), actor, _year_path(year), preliminary=preliminary)
    except DomainError as exc:
        # A redirect is below 400, so the request's session would be committed: nothing the refused
        # service wrote before it refused may stay.
        db_session().rollback()
        flash(exc.message, "error")
        return redirect(url_for("reports.reports_home"), 303)
    kind = "初步快照" if preliminary else "年末快照"
    flash(f"已冻结 {year} 年{kind}，哈希 {snap.hash[:16]}…", "ok")
    return redirect(url_for("reports.report_page", year=year), 303)


@bp.post("/admin/reports/<int:year>/snapshot")
def freeze(year: int) -> Any:
    return _freeze(year)


@bp.post("/admin/reports/snapshot")
def freeze_any_year() -> Any:
    """The “冻结其他年度” form: the year comes from the form field."""
    require_admin()
    try:
        year = int(request.form.get("year", ""))
        services.check_year(year)
    except ValueError:
        flash("年份应为整数", "error")
        return redirect(url_for("reports.reports_home"), 303)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("reports.reports_home"), 303)
    return _freeze(year)


def _snapshot_arg(name: str) -> int:
    raw = request.args.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        raise Invalid("请选择要比较的两个快照", {name: ["应为快照编号"]}) from None
    if not 1 <= value <= 2**31 - 1:
        raise Invalid("快照编号超出范围", {name: ["应为快照编号"]})
    return value


@bp.get("/admin/reports/snapshots/compare")
def snapshots_compare() -> Any:
    """Two snapshots side by side (?a=<id>&b=<id>): each figure, B − A, and each one's definitions version."""
    require_admin()
    session = db_session()
    a = snapshot.get_snapshot(session, _snapshot_arg("a"))
    b = snapshot.get_snapshot(session, _snapshot_arg("b"))
    return render_template(
        "reports/snapshot_compare.html",
        a=a,
        b=b,
        comparison=snapshot_compare.compare(a.payload, b.payload),
        snaps=snapshot.list_snapshots(session),
    )


@bp.get("/admin/reports/<int:year>")
def report_page(year: int) -> Any:
    require_admin()
    report = annual_report.build_report(db_session(), _year_path(year))
    srcs = {
        name: url_for("reports.report_chart", year=year, name=name) for name, _t in annual_report.CHART_SPECS
    }
    return render_template(
        "reports/report_page.html",
        **annual_report.report_context(report, srcs),
        checks=annual_report.internal_context(report)["checks"],
    )


@bp.get("/admin/reports/<int:year>/chart/<name>.png")
def report_chart(year: int, name: str) -> Any:
    require_admin()
    if name not in CHARTS:
        raise NotFound("没有这个图表")
    report = annual_report.build_report(db_session(), _year_path(year), with_differences=False)
    return Response(annual_report.chart_png(name, report.metrics), mimetype="image/png")


@bp.get("/admin/reports/<int:year>/report.<fmt>")
def report_download(year: int, fmt: str) -> Any:
    require_admin()
    if fmt not in ("docx", "md", "html"):
        raise NotFound("格式应为 docx、md 或 html")
    report = annual_report.build_report(db_session(), _year_path(year))
    name = f"gaogang-annual-report-{year}.{fmt}"
    disposition = {"Content-Disposition": f"attachment; filename={name}"}
    if fmt == "docx":
        return Response(
            annual_report.render_docx(report),
            headers=disposition,
            mimetype="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
    if fmt == "md":
        return Response(
            annual_report.render_markdown(report),
            mimetype="text/markdown; charset=utf-8",
            headers=disposition,
        )
    return Response(
        annual_report.render_html(report), mimetype="text/html; charset=utf-8", headers=disposition
    )


@bp.get("/admin/reports/<int:year>/internal")
def internal_page(year: int) -> Any:
    """The internal appendix (missing data, changes since the snapshot, hash, definitions)."""
    require_admin()
    report = annual_report.build_report(db_session(), _year_path(year))
    return render_template("reports/internal_page.html", **annual_report.internal_context(report))


@bp.get("/admin/reports/<int:year>/internal.<fmt>")
def internal_download(year: int, fmt: str) -> Any:
    require_admin()
    if fmt not in ("md", "html"):
        raise NotFound("格式应为 md 或 html")
    report = annual_report.build_report(db_session(), _year_path(year))
    name = f"gaogang-annual-report-{year}-internal.{fmt}"
    disposition = {"Content-Disposition": f"attachment; filename={name}"}
    if fmt == "md":
        body, mimetype = annual_report.render_internal_markdown(report), "text/markdown; charset=utf-8"
    else:
        body, mimetype = annual_report.render_internal_html(report), "text/html; charset=utf-8"
    return Response(body, mimetype=mimetype, headers=disposition)


@bp.route("/admin/reports/<int:year>/tables/<table>", methods=["GET", "POST"])
def template_table_form(year: int, table: str) -> Any:
    actor = require_admin()
    year = _year_path(year)
    if table not in template_tables.TABLE_TITLES:
        raise NotFound("表号应为 2、3 或 4")
    session = db_session()
    values: dict[str, Any] = services.template_table_values(session, year).get(table) or {}
    errors: dict[str, list[str]] = {}
    message = None
    if request.method == "POST":
        values = {k: v for k, v in request.form.items() if k != "csrf_token"}
        try:
            services.save_template_table(session, actor, year=year, table=table, values=values)
        except Invalid as exc:
            errors, message = exc.details, exc.message
        else:
            flash(f"{template_tables.TABLE_TITLES[table]} 已保存", "ok")
            return redirect(url_for("reports.reports_home"), 303)
    prefill = None
    if table == "2":
        prefill = _licensing_prefill(session, year, values)
        if prefill["computed"] is not None and values.get(PREFILLED) in (None, ""):
            values = {**values, PREFILLED: prefill["computed"]}
    layout = _form_layout(table)
    status = 422 if errors else 200
    return render_template(
        "reports/template_table.html",
        year=year,
        table=table,
        title=template_tables.TABLE_TITLES[table],
        layout=layout,
        values=values,
        errors=errors,
        message=message,
        prefill=prefill,
        prefilled_key=PREFILLED,
    ), status


PREFILLED = "20.5|decisions"  # 表二 行政许可 本年处理决定数量, prefilled from the case records


def _licensing_prefill(session: Any, year: int, values: dict[str, Any]) -> dict[str, Any]:
    """Decisions counted from the case records (to now, or year end), and the entered value's difference."""
    result = report_figures.licensing_decisions(session, year, services.default_as_of(year))
    computed = result["value"]
    entered = values.get(PREFILLED)
    diff = None
    if computed is not None and entered not in (None, ""):
        try:
            diff = int(entered) - computed
        except ValueError:
            diff = None
    return {"computed": computed, "missing": result["missing"], "difference": diff}


def _form_layout(table: str) -> dict[str, Any]:
    if table == "2":
        return {
            "columns": None,
            "rows": [
                (f"{art} {name}", [(f"{r}|{c}", label) for c, label in cols])
                for r, art, name, cols in template_tables.TABLE2_ROWS
            ],
        }
    if table == "3":
        cols = template_tables.TABLE3_COLUMNS
        return {
            "columns": [label for _c, label in cols],
            "rows": [
                (label, [(f"{r}|{c}", cl) for c, cl in cols]) for r, label in template_tables.TABLE3_ROWS
            ],
        }
    cols = template_tables.TABLE4_COLUMNS
    return {
        "columns": [label for _c, label in cols],
        "rows": [(label, [(f"{g}|{c}", cl) for c, cl in cols]) for g, label in template_tables.TABLE4_GROUPS],
    }


@bp.post("/admin/reports/case-stats")
def case_stats_upload() -> Any:
    actor = require_admin()
    file = request.files.get("file")
    try:
        year = int(request.form.get("year", ""))
    except ValueError:
        flash("请填写年份", "error")
        return redirect(url_for("reports.reports_home"), 303)
    if file is None or not file.filename:
        flash("请选择 CSV 文件", "error")
        return redirect(url_for("reports.reports_home"), 303)
    try:
        text = file.read().decode("utf-8")
        rows, lines = services.read_case_csv(text)
        result = services.import_case_stats(db_session(), actor, year=year, rows=rows, line_of=lines)
    except UnicodeDecodeError:
        flash("文件不是 UTF-8 编码的 CSV", "error")
        return redirect(url_for("reports.reports_home"), 303)
    except DomainError as exc:
        db_session().rollback()  # as above: the redirect would commit what the import wrote before refusing
        flash(error_summary(exc), "error")
        return redirect(url_for("reports.reports_home"), 303)
    clear_cache()
    flash(f"已导入 {result.rows} 行：新增 {result.created}，更新 {result.updated}", "ok")
    return redirect(url_for("reports.reports_home"), 303)


# ---- bundles ----------------------------------------------------------------------------------------


@bp.get("/bundles/")
def bundles_public() -> Any:
    current_principal()
    return render_template("reports/bundles_public.html", bundles=bundles.list_bundles(db_session(), True))


@bp.get("/bundles/<int:bundle_id>")
def bundle_public(bundle_id: int) -> Any:
    current_principal()
    view = bundles.bundle_view(db_session(), bundle_id, public=True)
    return render_template("reports/bundle_public.html", view=view)


@bp.get("/admin/bundles/")
def bundles_admin() -> Any:
    require_admin()
    session = db_session()
    rows = bundles.list_bundles(session)
    counts = {b.id: len(bundles.bundle_entry_ids(session, b.id)) for b in rows if b.id is not None}
    return render_template(
        "reports/bundles_admin.html", bundles=rows, counts=counts, warnings=bundles.check_bundles(session)
    )


class BundleForm(TypedDict):
    """The bundle editor's fields as the page shows them (task codes one per line)."""

    name: str
    description: str
    task_codes: str
    published: bool


@bp.route("/admin/bundles/new", methods=["GET", "POST"], defaults={"bundle_id": None})
@bp.route("/admin/bundles/<int:bundle_id>/edit", methods=["GET", "POST"])
def bundle_edit(bundle_id: int | None) -> Any:
    actor = require_admin()
    session = db_session()
    from reports.models import Bundle

    bundle = session.get(Bundle, bundle_id) if bundle_id is not None else None
    if bundle_id is not None and bundle is None:
        raise NotFound("套餐式服务不存在")
    codes = ""
    if bundle is not None and bundle.id is not None:
        codes = "\n".join(
            e["task_code"]
            for e in services.entries_by_ids(session, bundles.bundle_entry_ids(session, bundle.id))
        )
    form: BundleForm = {
        "name": bundle.name if bundle else "",
        "description": bundle.description if bundle else "",
        "task_codes": codes,
        "published": bundle.published if bundle else False,
    }
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        form = {
            "name": request.form.get("name", ""),
            "description": request.form.get("description", ""),
            "task_codes": request.form.get("task_codes", ""),
            "published": bool(request.form.get("published")),
        }
        try:
            saved = bundles.save_bundle(
                session,
                actor,
                name=form["name"],
                description=form["description"],
                task_codes=form["task_codes"].split(),
                published=form["published"],
                bundle_id=bundle_id,
            )
        except Invalid as exc:
            errors = exc.details
        else:
            flash("套餐式服务已保存", "ok")
            clear_cache()
            return redirect(url_for("reports.bundle_admin_view", bundle_id=saved.id), 303)
    return render_template("reports/bundle_edit.html", bundle=bundle, form=form, errors=errors), (
        422 if errors else 200
    )


@bp.get("/admin/bundles/<int:bundle_id>")
def bundle_admin_view(bundle_id: int) -> Any:
    require_admin()
    view = bundles.bundle_view(db_session(), bundle_id, public=False)
    warnings = bundles.check_bundle(db_session(), bundle_id)
    return render_template("reports/bundle_public.html", view=view, admin=True, warnings=warnings)


# ---- narrative blocks and entered figures -------------------------------------------------------------


def _placeholder_rows(session: Any, year: int) -> list[tuple[str, str, str]]:
    """(placeholder, meaning, value in the latest snapshot) for the editing page's reference list."""
    snap = snapshot.latest_snapshot(session, year)
    sources = narratives.Sources(year, snap.payload) if snap is not None else None
    rows = []
    for name, (meaning, resolve) in narratives.PLACEHOLDERS.items():
        value = "（尚未冻结快照）" if sources is None else (resolve(sources) or narratives.PENDING)
        rows.append((name, meaning, value))
    return rows


@bp.route("/admin/reports/<int:year>/narratives", methods=["GET", "POST"])
def narratives_page(year: int) -> Any:
    """报告文字: every narrative block of the year's form, edited one at a time."""
    actor = require_admin()
    year = _year_path(year)
    session = db_session()
    errors: dict[str, list[str]] = {}
    drafts: dict[str, str] = {}
    if request.method == "POST":
        key = request.form.get("key", "")
        try:
            if request.form.get("action") == "reset":
                narratives.reset_block(session, actor, year=year, key=key)
                flash("已恢复默认文字", "ok")
            else:
                narratives.save_block(session, actor, year=year, key=key, text=request.form.get("text", ""))
                flash("已保存", "ok")
        except Invalid as exc:
            errors[key] = list(exc.details.get("text", [exc.message]))
            drafts[key] = request.form.get("text", "")
        else:
            return redirect(url_for("reports.narratives_page", year=year) + f"#b-{key}", 303)
    return render_template(
        "reports/narratives.html",
        year=year,
        form=narratives.form_for_year(year),
        blocks=narratives.blocks_for(session, year),
        placeholders=_placeholder_rows(session, year),
        errors=errors,
        drafts=drafts,
    ), (422 if errors else 200)


@bp.route("/admin/reports/<int:year>/figures", methods=["GET", "POST"])
def figures_page(year: int) -> Any:
    """填报数字: the figures the platform has no source for, with unit and “余/多”."""
    actor = require_admin()
    year = _year_path(year)
    session = db_session()
    stored = entered_figures.entered_figures(session, year)
    errors: dict[str, list[str]] = {}
    form: dict[str, tuple[str, bool]] = {k: (v["value"], bool(v["lower_bound"])) for k, v in stored.items()}
    if request.method == "POST":
        # Only the fields the form sent: a blank field removes its figure, a missing one (a partial
        # or empty POST) leaves it as stored, so a truncated submit cannot wipe the year's figures.
        submitted = {
            d.key: (request.form[f"v-{d.key}"], request.form.get(f"lb-{d.key}") == "1")
            for d in entered_figures.FIGURES
            if f"v-{d.key}" in request.form
        }
        form = {**form, **submitted}
        try:
            changed = entered_figures.save_figures(session, actor, year=year, values=submitted)
        except Invalid as exc:
            errors = exc.details
        else:
            flash(f"已保存 {changed} 项；重新冻结快照后进入报告", "ok")
            return redirect(url_for("reports.figures_page", year=year), 303)
    return render_template(
        "reports/figures.html",
        year=year,
        figures=entered_figures.FIGURES,
        form=form,
        errors=errors,
    ), (422 if errors else 200)


# ---- JSON API -----------------------------------------------------------------------------------------


@api_blp.route("/metrics")
class MetricsApi(MethodView):
    @api_blp.arguments(MetricsQueryArgsSchema, location="query")
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=MetricsResponseSchema, description="各项指标")
    @api_blp.alt_response(401, schema=ErrorSchema, description="未登录或令牌无效")
    @api_blp.alt_response(403, schema=ErrorSchema, description="仅区级管理员")
    def get(self, args: dict[str, Any]) -> Any:
        """All metrics for a year as of a date (administrators): numerator, denominator and item ids."""
        require_admin()
        year = args["year"]
        services.check_year(year)
        as_of = None
        if args.get("as_of"):
            as_of = datetime.combine(args["as_of"], datetime.min.time(), CHINA_TZ) + timedelta(
                days=1, microseconds=-1
            )
        results = services.compute_metrics(db_session(), year, as_of)
        return {
            "year": year,
            "definitions_version": metrics.DEFINITIONS_VERSION,
            "as_of": (as_of or services.default_as_of(year)).isoformat(),
            "metrics": {k: r.as_dict() for k, r in results.items()},
        }


@api_blp.route("/case-stats")
class CaseStatsApi(MethodView):
    @api_blp.arguments(CaseStatsUploadSchema)
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=CaseStatsResultSchema, description="导入结果")
    @api_blp.alt_response(401, schema=ErrorSchema, description="未登录或令牌无效")
    @api_blp.alt_response(403, schema=ErrorSchema, description="只能导入本部门事项")
    def post(self, body: dict[str, Any]) -> Any:
        """Upsert a year's monthly case counts (all rows or none). Department staff: own entries only."""
        actor = require_login()
        result = services.import_case_stats(
            db_session(), actor, year=body["year"], rows=body["rows"], source="api"
        )
        clear_cache()
        return {"rows": result.rows, "created": result.created, "updated": result.updated}


def _narratives_body(year: int) -> dict[str, Any]:
    blocks = narratives.blocks_for(db_session(), year)
    return {
        "year": year,
        "form": narratives.form_for_year(year),
        "blocks": [
            {"key": b.key, "title": b.title, "text": b.text, "default": b.default, "edited": b.edited}
            for b in blocks
        ],
        "placeholders": {name: meaning for name, (meaning, _r) in narratives.PLACEHOLDERS.items()},
    }


@api_blp.route("/<int:year>/narratives")
class NarrativesApi(MethodView):
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=NarrativeListSchema, description="本年度报告的各段文字")
    @api_blp.alt_response(403, schema=ErrorSchema, description="仅区级管理员")
    def get(self, year: int) -> Any:
        """The narrative blocks of a year's report (stored text or default) and the placeholders."""
        require_admin()
        return _narratives_body(_year_path(year))


@api_blp.route("/<int:year>/narratives/<key>")
class NarrativeApi(MethodView):
    @api_blp.arguments(NarrativeUpdateSchema)
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=NarrativeListSchema, description="已保存")
    @api_blp.alt_response(403, schema=ErrorSchema, description="仅区级管理员")
    @api_blp.alt_response(404, schema=ErrorSchema, description="本年度报告没有这一段")
    @api_blp.alt_response(422, schema=ErrorSchema, description="不认识的占位符或花括号不成对")
    def put(self, body: dict[str, Any], year: int, key: str) -> Any:
        """Store a block's text; an unknown placeholder is refused with its name."""
        actor = require_admin()
        narratives.save_block(db_session(), actor, year=_year_path(year), key=key, text=body["text"])
        return _narratives_body(year)

    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=NarrativeListSchema, description="已恢复默认文字")
    @api_blp.alt_response(403, schema=ErrorSchema, description="仅区级管理员")
    @api_blp.alt_response(404, schema=ErrorSchema, description="本年度报告没有这一段")
    def delete(self, year: int, key: str) -> Any:
        """Back to the default text."""
        actor = require_admin()
        narratives.reset_block(db_session(), actor, year=_year_path(year), key=key)
        return _narratives_body(year)


def _figures_body(year: int) -> dict[str, Any]:
    stored = entered_figures.entered_figures(db_session(), year)
    return {
        "year": year,
        "figures": [
            {
                "key": d.key,
                "name": d.name,
                "value": stored[d.key]["value"] if d.key in stored else None,
                "unit": stored[d.key]["unit"] if d.key in stored else d.unit,
                "lower_bound": bool(stored[d.key]["lower_bound"]) if d.key in stored else False,
            }
            for d in entered_figures.FIGURES
        ],
    }


@api_blp.route("/<int:year>/figures")
class EnteredFiguresApi(MethodView):
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=EnteredFigureListSchema, description="本年度填报的数字")
    @api_blp.alt_response(403, schema=ErrorSchema, description="仅区级管理员")
    def get(self, year: int) -> Any:
        """Every figure an administrator may enter for the year, with its stored value (null: not entered)."""
        require_admin()
        return _figures_body(_year_path(year))


@api_blp.route("/<int:year>/figures/<key>")
class EnteredFigureApi(MethodView):
    @api_blp.arguments(EnteredFigureUpdateSchema)
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=EnteredFigureListSchema, description="已保存")
    @api_blp.alt_response(403, schema=ErrorSchema, description="仅区级管理员")
    @api_blp.alt_response(422, schema=ErrorSchema, description="不认识的填报项或数值有误")
    def put(self, body: dict[str, Any], year: int, key: str) -> Any:
        """Enter one figure: value, unit (default: the figure's own), lower bound (“余/多”)."""
        actor = require_admin()
        entered_figures.save_figure(
            db_session(),
            actor,
            year=_year_path(year),
            key=key,
            value=body["value"],
            unit=body.get("unit"),
            lower_bound=body["lower_bound"],
        )
        return _figures_body(year)


def register(app: Flask, api: Any) -> None:
    from core.web import add_moved_prefix, csrf
    from reports.cli import reports_cli

    # setdefault: a cache injected before registration (tests: a controllable clock) is kept.
    app.extensions.setdefault(cache_module.EXTENSION, MetricsCache())
    app.register_blueprint(bp)
    csrf.exempt(api_blp)
    api.register_blueprint(api_blp)
    app.cli.add_command(reports_cli)
    # The reports API was unversioned until this release; the old URLs redirect for one more.
    add_moved_prefix(app, "/api/reports", "/api/v1/reports")

    @app.context_processor
    def bundle_links() -> dict[str, Any]:
        """The portal's pages (catalog, which never imports reports) link to the 一件事 bundles
        through these two template functions."""
        return {
            "published_bundles": lambda: bundles.list_bundles(db_session(), published_only=True),
            "bundles_of_entry": lambda entry_id: bundles.bundles_of_entries(db_session(), [entry_id]).get(
                entry_id, []
            ),
        }
