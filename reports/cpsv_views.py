"""Public open-data URLs for the CPSV-AP export, and `flask cpsv export`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from flask import Blueprint, Flask, Response, current_app, request
from flask.cli import with_appcontext
from sqlmodel import col, select

from core.errors import NotFound
from core.web import database, db_session, limiter, settings
from reports import cpsv_cache
from reports.cpsv_cache import CatalogueStamp, ExportCache, catalogue_stamp
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
    """The published catalogue as CPSV-AP, built once per catalogue stamp (reports.cpsv_cache).

    Revalidation is by ETag (If-None-Match → 304, nothing built). Last-Modified is given from the rows
    that carry a time, but If-Modified-Since alone is answered in full: some changes move the stamp
    without any such time (a division renamed, a licence type linked to an entry), and one second is
    too coarse for a publish right after a build."""
    if fmt not in MEDIA_TYPES:
        raise NotFound(f"开放数据格式 {fmt[:20]} 不存在，请使用 .ttl 或 .jsonld")
    session = db_session()
    base_url = settings().public_base_url

    def build() -> bytes:
        from reports.cpsv import build_graph, serialise

        return serialise(build_graph(session, base_url, _extras(session)), fmt).encode()

    stamp = catalogue_stamp(session)
    if stamp is None:  # no search state row: nothing may be kept
        return _document(build(), fmt)
    etag = stamp.etag(fmt, base_url)
    if request.if_none_match.contains_weak(etag):
        return _conditional(Response(status=304), etag, stamp)
    key = (fmt, base_url, stamp.parts)
    return _conditional(_document(_export_cache().get_or_build(key, build), fmt), etag, stamp)


def _document(body: bytes, fmt: str) -> Response:
    return Response(body, mimetype=MEDIA_TYPES[fmt].split(";")[0], headers={"Content-Type": MEDIA_TYPES[fmt]})


def _conditional(response: Response, etag: str, stamp: CatalogueStamp) -> Response:
    response.set_etag(etag)
    if stamp.last_modified is not None:
        response.last_modified = stamp.last_modified
    # Public open data: shared caches may keep it, and ask again (cheaply, by ETag) before each use.
    response.headers["Cache-Control"] = "public, no-cache"
    return response


def _export_cache() -> ExportCache:
    cache: ExportCache = current_app.extensions[cpsv_cache.EXTENSION]
    return cache


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
    # setdefault: a cache injected before registration is kept (as reports.views does its own).
    app.extensions.setdefault(cpsv_cache.EXTENSION, ExportCache())
    app.register_blueprint(bp)
    app.cli.add_command(cpsv)
