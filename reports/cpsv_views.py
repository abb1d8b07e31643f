"""Public open-data URLs for the CPSV-AP export, and `flask cpsv export`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from flask import Blueprint, Flask, Response
from flask.cli import with_appcontext
from sqlmodel import col, select

from core.web import database, db_session, limiter, settings
from reports.models import Bundle, BundleEntry

# reports.cpsv (rdflib) is imported inside the functions that export: rdflib takes a noticeable part of
# a second to import, paid by every process that loads the app, and only this export uses it.
if TYPE_CHECKING:
    from reports.cpsv import Extras

bp = Blueprint("cpsv", __name__)

MEDIA_TYPES = {"ttl": "text/turtle; charset=utf-8", "jsonld": "application/ld+json; charset=utf-8"}


def _extras(session: Any) -> Extras:
    """Licence types produced by entries and bundles (life events), from the packages that own them."""
    from reports.cpsv import Extras, licence_outputs

    events = []
    for bundle in session.exec(select(Bundle).where(col(Bundle.published)).order_by(col(Bundle.id))).all():
        members = select(BundleEntry.entry_id).where(BundleEntry.bundle_id == bundle.id)
        entry_ids = list(session.exec(members.order_by(col(BundleEntry.position))).all())
        events.append((str(bundle.id), bundle.name, bundle.description, entry_ids))
    return Extras(outputs=licence_outputs(session), events=events)


@bp.get("/open-data/cpsv-ap.<fmt>")
@limiter.limit("30 per minute")
def export(fmt: str) -> Response:
    if fmt not in MEDIA_TYPES:
        return Response("unknown format; use .ttl or .jsonld", status=404, mimetype="text/plain")
    from reports.cpsv import build_graph, serialise

    session = db_session()
    graph = build_graph(session, settings().public_base_url, _extras(session))
    return Response(
        serialise(graph, fmt),
        mimetype=MEDIA_TYPES[fmt].split(";")[0],
        headers={"Content-Type": MEDIA_TYPES[fmt]},
    )


@click.group("cpsv", help="CPSV-AP 3.2.0 导出 (export)")
def cpsv() -> None:
    pass


@cpsv.command("export")
@click.option("--format", "fmt", type=click.Choice(["ttl", "jsonld"]), default="ttl", help="输出格式")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default="-",
              help="输出文件（- 为标准输出）")
@with_appcontext
def export_cli(fmt: str, output: str) -> None:
    """按 CPSV-AP 3.2.0 导出已发布的政务服务事项（开放数据）。"""
    from reports.cpsv import build_graph, serialise

    with database().transaction() as session:
        text = serialise(build_graph(session, settings().public_base_url, _extras(session)), fmt)
    with click.open_file(output, "w", encoding="utf-8") as fh:
        fh.write(text)


def register(app: Flask, api: Any) -> None:
    app.register_blueprint(bp)
    app.cli.add_command(cpsv)
