"""The administrators' 要素质量检查 page: the score per department and per town, drill-down to the
failing entries, CSV/XLSX export (core.exports). Reads only; the rules are catalog.quality's."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, render_template, request

from catalog import quality, quality_report
from catalog.models import ENTRY_STATUS_LABELS
from core.errors import NotFound
from core.exports import csv_text, xlsx_bytes
from core.web import db_session, require_admin

bp = Blueprint("quality", __name__, template_folder="templates")

BY_LABELS = {"department": "按部门", "town": "按镇街"}
STATUS_LABELS = {s.value: label for s, label in ENTRY_STATUS_LABELS.items()}


def _args() -> tuple[str, str | None]:
    by = request.args.get("by", "department")
    if by not in BY_LABELS:
        by = "department"
    key = (request.args.get("key") or "").strip()[:20] or None
    return by, key


def _data(by: str, key: str | None) -> dict[str, Any]:
    session = db_session()
    checks = quality_report.check_catalogue(session)
    groups = quality_report.scores(session, checks, by)
    group = next((g for g in groups if g.key == key), None) if key else None
    if key and group is None:
        raise NotFound("没有这个部门或镇街的检查结果")
    failing = (
        [c for c in quality_report.in_group(checks, by, key) if c.findings] if key else []
    )
    return {"checks": checks, "groups": groups, "group": group, "failing": failing,
            "overall": quality_report.total(checks)}


@bp.get("/admin/quality")
def quality_page() -> Any:
    require_admin()
    by, key = _args()
    data = _data(by, key)
    return render_template(
        "staff/quality.html", by=by, key=key, BY_LABELS=BY_LABELS, STATUS_LABELS=STATUS_LABELS,
        LEVEL_LABELS=quality.LEVEL_LABELS, RULES=quality.RULES,
        definition=quality_report.SCORE_DEFINITION, **data,
    )


def _table(by: str, key: str | None, data: dict[str, Any]) -> tuple[str, list[str], list[list[Any]]]:
    if key:
        header = ["实施编码", "事项名称", "状态", "级别", "规则代码", "字段", "问题"]
        rows = [
            [c.task_code, c.name, STATUS_LABELS.get(c.status, c.status), quality.LEVEL_LABELS[f.level],
             f.code, f.field, f.message]
            for c in data["failing"] for f in c.findings
        ]
        return f"质量检查-{data['group'].label}", header, rows
    header = ["部门" if by == "department" else "镇街", "检查项数", "无错误项数", "得分（%）", "错误条数",
              "提示条数"]
    rows = [[g.label, g.entries, g.clean, round(g.score * 100, 1), g.errors, g.warnings]
            for g in data["groups"]]
    return f"质量检查-{BY_LABELS[by]}", header, rows


@bp.get("/admin/quality/export.<fmt>")
def quality_export(fmt: str) -> Any:
    require_admin()
    if fmt not in ("csv", "xlsx"):
        raise NotFound("仅支持 CSV 和 XLSX")
    by, key = _args()
    title, header, rows = _table(by, key, _data(by, key))
    filename = f"quality-{by}{'-' + key if key else ''}.{fmt}"
    disposition = {"Content-Disposition": f"attachment; filename={filename}"}
    if fmt == "csv":
        return Response(csv_text(rows, header), mimetype="text/csv; charset=utf-8", headers=disposition)
    return Response(
        xlsx_bytes(title, rows, header),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=disposition,
    )


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
