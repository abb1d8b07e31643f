"""Web layer of the sync to the city registry: JSON status for the dashboard, Prometheus /metrics,
the administrators' dead-letter pages under /admin/sync/, and the wiring of the drain scheduler.

Every rule lives in licenses.sync, licenses.sync_admin and licenses.reconcile; this module checks who
may call, parses input and renders.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint as PageBlueprint
from flask import Flask, Response, current_app, flash, redirect, render_template, request, url_for
from flask_smorest import Blueprint
from marshmallow import fields, validate

from core.audit import record
from core.db import MAX_DB_ID
from core.errors import DomainError, Forbidden
from core.schemas import BaseSchema
from core.web import (
    cached,
    db_session,
    page_args,
    require_admin,
    require_login,
    require_metrics_access,
    row_id,
    settings,
)
from licenses import grants, sync, sync_admin

blp = Blueprint(
    "licence_sync",
    __name__,
    url_prefix="/api/v1/sync",
    description="电子证照推送市级证照库：同步状态、死信处理",
)
pages = PageBlueprint("licence_sync_pages", __name__, url_prefix="/admin/sync", template_folder="templates")
metrics_bp = PageBlueprint("licence_sync_metrics", __name__)



class IdsSchema(BaseSchema):
    ids = fields.List(
        fields.Integer(validate=validate.Range(1, MAX_DB_ID)),
        required=True,
        validate=validate.Length(1, 1000),
    )


class SkipSchema(IdsSchema):
    reason = fields.String(required=True, validate=validate.Length(2, 500))


class DeadLetterQueryArgsSchema(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(1, 10_000))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
    issuer_code = fields.String(load_default=None, validate=validate.Length(18, 18))


def _dead_letter_dict(row: Any) -> dict[str, Any]:
    # The payload holds the holder's name and code: administrators handling a dead letter don't need them.
    return {
        "id": row.id,
        "licence_id": row.licence_id,
        "identifier": row.identifier,
        "version": row.version,
        "operation": row.operation,
        "issuer_code": row.issuer_code,
        "issue_day": str(row.issue_day),
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


@blp.route("/status")
@blp.doc(security=[{"bearerAuth": []}])
@blp.response(200)
def status() -> dict[str, Any]:
    """同步总体状态：各状态条数、积压时长（最早待推送记录的年龄）、吞吐量、各部门推送情况（仅区级管理员）"""
    # District-wide figures of every department: not for department staff or village operators.
    require_admin()
    return sync_admin.status_summary(db_session())


@blp.route("/licences/<int:licence_id>")
@blp.doc(security=[{"bearerAuth": []}])
@blp.response(200)
def licence_status(licence_id: int) -> dict[str, Any]:
    """单个证照的同步状态：待推送、已同步第 n 版或失败（本部门有该类证照管理权限的人员或管理员可查）"""
    principal = require_login()
    from licenses.models import Licence

    lic = db_session().get(Licence, licence_id)
    # The licence's reads need a grant for its type (licenses.grants): the department alone let its
    # catalogue editors and reviewers list licence identifiers by id, which the licence API refuses them.
    if lic is not None and not grants.can_view(db_session(), principal, lic):
        raise Forbidden("只能查看本部门证照的同步状态（须有该类证照的管理权限）")
    return sync_admin.licence_sync_status(db_session(), licence_id)


@blp.route("/dead-letters")
@blp.doc(security=[{"bearerAuth": []}])
@blp.arguments(DeadLetterQueryArgsSchema, location="query")
@blp.response(200)
def dead_letters(args: dict[str, Any]) -> dict[str, Any]:
    """死信列表（推送失败的记录），仅区级管理员"""
    require_admin()
    offset = (args["page"] - 1) * args["limit"]
    rows, total = sync_admin.list_dead_letters(
        db_session(), offset=offset, limit=args["limit"], issuer_code=args["issuer_code"]
    )
    return {
        "total": total,
        "page": args["page"],
        "limit": args["limit"],
        "items": [_dead_letter_dict(r) for r in rows],
    }


@blp.route("/dead-letters/requeue", methods=["POST"])
@blp.doc(security=[{"bearerAuth": []}])
@blp.arguments(IdsSchema)
@blp.response(200)
def requeue(body: dict[str, Any]) -> dict[str, Any]:
    """重新排队推送死信（审计）"""
    principal = require_admin()
    return {"requeued": sync_admin.requeue_dead_letters(db_session(), body["ids"], principal)}


@blp.route("/dead-letters/skip", methods=["POST"])
@blp.doc(security=[{"bearerAuth": []}])
@blp.arguments(SkipSchema)
@blp.response(200)
def skip(body: dict[str, Any]) -> dict[str, Any]:
    """跳过死信，须填写原因（审计）"""
    principal = require_admin()
    return {"skipped": sync_admin.skip_dead_letters(db_session(), body["ids"], principal, body["reason"])}


# ---------------------------------------------------------------- Prometheus


class _SyncCollector:
    def __init__(self, summary: dict[str, Any]) -> None:
        self.summary = summary

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.summary
        records = GaugeMetricFamily(
            "gaogang_licence_outbox_records", "Outbox records by status", labels=["status"]
        )
        for status_name, n in s["by_status"].items():
            records.add_metric([status_name], n)
        yield records
        yield CounterMetricFamily(
            "gaogang_licence_sync_pushed",
            "Records acknowledged by the city registry",
            value=s["by_status"]["sent"],
        )
        yield GaugeMetricFamily(
            "gaogang_licence_sync_dead_letters", "Records that failed permanently", value=s["dead_letters"]
        )
        yield GaugeMetricFamily(
            "gaogang_licence_sync_retrying",
            "Pending records whose last attempt failed",
            value=s["retrying"]["count"],
        )
        by_kind = GaugeMetricFamily(
            "gaogang_licence_sync_retrying_by_kind",
            "Pending records waiting after a failed attempt, by kind of failure",
            labels=["kind"],
        )
        for kind, n in s["retrying"]["by_kind"].items():
            by_kind.add_metric([kind], n)
        yield by_kind
        yield GaugeMetricFamily(
            "gaogang_licence_sync_clock_skew",
            "1 while the city registry refuses this host's timestamps (clock more than 300 s off)",
            value=1 if any(a["kind"] == sync.CLOCK_SKEW for a in s["alerts"]) else 0,
        )
        yield GaugeMetricFamily(
            "gaogang_licence_sync_lag_seconds", "Age of the oldest pending record", value=s["lag_seconds"]
        )
        yield GaugeMetricFamily(
            "gaogang_licence_sync_throughput_per_second",
            "Records synced per second over the last minute",
            value=s["throughput_per_s"]["1m"],
        )
        counts = (s["last_reconciliation"] or {}).get("counts") or {}
        yield GaugeMetricFamily(
            "gaogang_licence_sync_reconcile_extra",
            "Records the city registry holds that the district never sent (last reconciliation; "
            "reported, never deleted)",
            value=int(counts.get("extra_in_registry", 0)),
        )
        yield GaugeMetricFamily(
            "gaogang_licence_sync_reconcile_resent",
            "Records the last reconciliation found missing or behind in the registry and re-queued",
            value=int(counts.get("requeued", 0)),
        )
        dept = GaugeMetricFamily(
            "gaogang_licence_sync_department_records",
            "Outbox records per issuing department and status",
            labels=["issuer_code", "status"],
        )
        for d in s["departments"]:
            for key in ("pushed", "pending", "failed"):
                dept.add_metric([d["issuer_code"], key], d[key])
        yield dept


@metrics_bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format; aggregate figures only (no personal data). Only for the scraper
    (core.web.require_metrics_access); the GROUP BY behind it runs at most once per
    METRICS_CACHE_SECONDS however often it is scraped."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    require_metrics_access()

    def compute() -> bytes:
        return generate_latest(_SyncCollector(sync_admin.status_summary(db_session())))

    body = cached("metrics", settings().metrics_cache_seconds, compute)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0], headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------- administrators' pages


def _ids_from_form() -> list[int]:
    return [i for i in map(row_id, request.form.getlist("ids")) if i is not None]


@pages.get("/")
def dashboard() -> Any:
    require_admin()
    session = db_session()
    page, limit = page_args(default_limit=50, max_limit=200)
    rows, total = sync_admin.list_dead_letters(session, offset=(page - 1) * limit, limit=limit)
    return render_template(
        "sync/dashboard.html",
        summary=sync_admin.status_summary(session),
        dead=[_dead_letter_dict(r) for r in rows],
        total=total,
        page=page,
        limit=limit,
        labels=sync.STATUS_LABELS,
    )


@pages.post("/requeue")
def requeue_page() -> Any:
    principal = require_admin()
    try:
        n = sync_admin.requeue_dead_letters(db_session(), _ids_from_form(), principal)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".dashboard")), 303
    flash(f"已重新排队 {n} 条记录，将在数秒内推送", "ok")
    return redirect(url_for(".dashboard")), 303


@pages.post("/skip")
def skip_page() -> Any:
    principal = require_admin()
    try:
        n = sync_admin.skip_dead_letters(
            db_session(), _ids_from_form(), principal, request.form.get("reason", "")
        )
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".dashboard")), 303
    flash(f"已跳过 {n} 条记录", "ok")
    return redirect(url_for(".dashboard")), 303


@pages.post("/reconcile")
def reconcile_page() -> Any:
    principal = require_admin()
    try:
        current_app.extensions["gaogang.publish_task"]("workers.sync_reconcile")
    except Exception:  # the broker is down: say so instead of a 500
        flash("无法提交对账任务：消息队列暂不可用，请稍后再试", "error")
        return redirect(url_for(".dashboard")), 303
    record(
        db_session(),
        actor=principal,
        action="licence_sync.reconcile_requested",
        entity_type="sync_run",
        entity_id="reconcile",
    )
    flash("已提交对账任务，完成后本页显示结果", "ok")
    return redirect(url_for(".dashboard")), 303


# ---------------------------------------------------------------- wiring


def register(app: Flask, api: Any) -> None:
    from core.web import READINESS_CHECKS, csrf

    csrf.exempt(blp)
    api.register_blueprint(blp)
    app.register_blueprint(pages)
    app.register_blueprint(metrics_bp)
    db = app.extensions["gaogang.db"]
    app.extensions.setdefault(READINESS_CHECKS, {})["licence_sync"] = lambda: sync_admin.readiness(db)
