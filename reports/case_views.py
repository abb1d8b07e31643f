"""Case records (办件) and 电子监察 on the web: the JSON intake API, the warnings page with drill-down to
the case, and the administrators' CSV upload. Everything goes through reports.cases and
reports.supervision; this module parses requests and renders.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint as ApiBlueprint

from core.errors import DomainError, Invalid, NotFound
from core.schemas import ErrorSchema
from core.types import china_today
from core.web import db_session, error_summary, page_args, require_admin, require_login, settings
from core.workdays import beyond_data, data_end
from reports import cases, supervision
from reports.schemas import CaseBatchSchema, CaseImportResultSchema, CaseSchema

bp = Blueprint("cases", __name__, template_folder="templates", url_prefix="")
api_blp = ApiBlueprint(
    "cases_api",
    __name__,
    url_prefix="/api/v1/cases",
    description="办件记录（受理、办理环节、特别程序、办结）(case records)",
)


def _import(rows: list[dict[str, Any]], label: str) -> dict[str, int]:
    actor = require_login()
    result = cases.import_cases(
        db_session(),
        actor,
        list(enumerate(rows, start=1)),
        today=china_today(),
        source="api",
        yellow_days=settings().case_yellow_days,
        row_label=label,
    )
    _clear_metrics()
    return result.as_dict()


def _clear_metrics() -> None:
    from reports.views import clear_cache

    clear_cache()


@api_blp.route("")
class CaseApi(MethodView):
    @api_blp.arguments(CaseSchema)
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=CaseImportResultSchema, description="导入结果")
    @api_blp.alt_response(401, schema=ErrorSchema, description="未登录或令牌无效")
    @api_blp.alt_response(403, schema=ErrorSchema, description="只能报送本部门（本辖区）事项的办件")
    def post(self, body: dict[str, Any]) -> Any:
        """Record one case (idempotent on project_no: the same body again changes nothing)."""
        return _import([body], "办件")


@api_blp.route("/batch")
class CaseBatchApi(MethodView):
    @api_blp.arguments(CaseBatchSchema)
    @api_blp.doc(security=[{"bearerAuth": []}])
    @api_blp.alt_response(200, schema=CaseImportResultSchema, description="导入结果")
    @api_blp.alt_response(401, schema=ErrorSchema, description="未登录或令牌无效")
    @api_blp.alt_response(403, schema=ErrorSchema, description="只能报送本部门（本辖区）事项的办件")
    def post(self, body: dict[str, Any]) -> Any:
        """Record up to 10,000 cases at once: all or none; bad ones are named by their position."""
        return _import(body["cases"], "第{}个办件")


# ---- pages ------------------------------------------------------------------------------------------------


def _year_bounds(today: date) -> tuple[int, date, date]:
    raw = request.args.get("year") or ""
    try:
        year = int(raw) if raw else today.year
    except ValueError:
        raise Invalid("年份应为整数", {"year": ["年份应为整数"]}) from None
    if not 2000 <= year <= 2099:
        raise Invalid("年份应在 2000–2099 之间", {"year": ["年份应在 2000–2099 之间"]})
    return year, date(year, 1, 1), min(date(year, 12, 31), today)


@bp.get("/staff/cases/warnings")
def warnings_page() -> Any:
    """电子监察: open cases with a yellow or red warning (or finished late), 按时办结率 and 提速率."""
    actor = require_login()
    session = db_session()
    departments = supervision.department_scope(session, actor)
    today = china_today()
    year, start, end = _year_bounds(today)
    level = request.args.get("level") or None
    if level not in (None, supervision.YELLOW, supervision.RED):
        raise Invalid("预警级别应为 yellow 或 red", {"level": ["预警级别应为 yellow 或 red"]})
    finished = request.args.get("state") == "finished"
    page, _limit = page_args()  # clamped: a page number of 20 digits overflowed the OFFSET (a 500)
    per_page = 100
    rows = supervision.list_warnings(
        session, departments, level=level, finished=finished, limit=per_page + 1, offset=(page - 1) * per_page
    )
    return render_template(
        "reports/case_warnings.html",
        rows=rows[:per_page],
        has_next=len(rows) > per_page,
        page=page,
        level=level,
        finished=finished,
        counts=supervision.warning_counts(session, departments),
        rates=supervision.compute_rates(session, start, end, departments),
        year=year,
        today=today,
        beyond_calendar=beyond_data(today),
        data_end=data_end(),
        yellow_days=settings().case_yellow_days,
        labels=supervision.WARNING_LABELS,
        scoped=departments is not None,
    )


@bp.get("/staff/cases/<int:case_id>")
def case_page(case_id: int) -> Any:
    actor = require_login()
    session = db_session()
    detail = supervision.case_detail(session, case_id, supervision.department_scope(session, actor))
    if detail is None:
        raise NotFound("办件不存在或不在您的权限范围内")
    return render_template(
        "reports/case_detail.html",
        **detail,
        labels=supervision.WARNING_LABELS,
        channels=supervision.CHANNEL_LABELS,
        applicants=supervision.APPLICANT_LABELS,
        results=supervision.RESULT_LABELS,
        beyond_calendar=beyond_data(detail["case"].deadline),
        data_end=data_end(),
    )


@bp.route("/admin/cases/import", methods=["GET", "POST"])
def import_page() -> Any:
    """Upload a case CSV (the same rules and format as `flask cases import`)."""
    actor = require_admin()
    if request.method == "GET":
        return render_template(
            "reports/case_import.html", required=cases.CSV_REQUIRED, optional=cases.CSV_OPTIONAL
        )
    file = request.files.get("file")
    if file is None or not file.filename:
        flash("请选择 CSV 文件", "error")
        return redirect(url_for("cases.import_page"), 303)
    try:
        stream = io.TextIOWrapper(file.stream, encoding="utf-8", newline="")
        result = cases.import_cases(
            db_session(),
            actor,
            cases.read_csv(stream),
            today=china_today(),
            source="csv",
            yellow_days=settings().case_yellow_days,
        )
    except UnicodeDecodeError:
        db_session().rollback()
        flash("文件不是 UTF-8 编码的 CSV，未导入任何数据", "error")
        return redirect(url_for("cases.import_page"), 303)
    except DomainError as exc:
        db_session().rollback()
        flash(error_summary(exc), "error")
        return redirect(url_for("cases.import_page"), 303)
    _clear_metrics()
    flash(
        f"已导入 {result.rows} 行：新增 {result.created}，更新 {result.updated}，未变 {result.unchanged}",
        "ok",
    )
    return redirect(url_for("cases.warnings_page"), 303)


def register(app: Flask, api: Any) -> None:
    from core.web import csrf
    from reports.cli import cases_cli

    app.register_blueprint(bp)
    csrf.exempt(api_blp)
    api.register_blueprint(api_blp)
    app.cli.add_command(cases_cli)
