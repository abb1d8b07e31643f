"""Search API (GET /api/v1/search), the Open311 GeoReport v2 service list, and the `flask search` CLI."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import click
import sqlalchemy as sa
from flask import Flask, Response, current_app, jsonify, request, url_for
from flask.cli import with_appcontext
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, fields, validate

from catalog import search as engine
from catalog.api import API_LIMIT
from catalog.elements import HANDLE_ITEMS, SERVICE_OBJECTS
from catalog.models import TASK_TYPES, USE_LEVELS, ImplementationEntry
from catalog.search.cache import DEFAULT_SIZE, ResultCache, TokenMemo, at_token
from catalog.search.elsewhere import find_elsewhere
from catalog.search.evaluation import RELEVANCE_CSV, evaluate_splits, format_report, read_relevance
from catalog.search_models import SearchEntry
from catalog.search_retention import purge_search_misses
from core.auth import SYSTEM
from core.config import PROJECT_ROOT
from core.db import table_of
from core.errors import Invalid, NotFound
from core.schemas import BaseSchema, ErrorSchema
from core.web import database, db_session, limiter, settings

REAL_ITEMS_CSV = PROJECT_ROOT / "data" / "service_items_guangan_511602.csv"
# The file names departments but not their 统一社会信用代码; the throwaway evaluation database takes
# the demo's made-up codes (nothing of it is kept).
EVALUATION_USCC_MAP = PROJECT_ROOT / "data" / "demo_department_uscc_321203.csv"
EVALUATION_DEPARTMENT_MAP = PROJECT_ROOT / "data" / "department_map_511602_321203.csv"
blp = Blueprint(
    "search_api", __name__, url_prefix="/api/v1", description="办事搜索：按名称、拼音、俗称查找已发布事项"
)
open311 = Blueprint(
    "open311", __name__, url_prefix="/open311/v2", description="Open311 GeoReport v2 服务目录（只读）"
)
limiter.limit(API_LIMIT)(blp)
limiter.limit(API_LIMIT)(open311)


class SearchQueryArgsSchema(BaseSchema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(load_default="", metadata={"description": "查询词：中文、全拼、首字母、俗称均可"})
    # The validators mirror engine.validate_filters so the OpenAPI document states which values
    # are accepted (the fuzzer sends only documented values and expects them to succeed).
    level = fields.String(
        load_default=None,
        validate=validate.OneOf(["", *USE_LEVELS], error="层级取值应为 1–6"),
        metadata={"description": "行使层级 4 县级 / 5 镇级 / 6 村级"},
    )
    division = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^(\d{6}|\d{12})?$", error="区划代码应为 6 位或 12 位数字"),
        metadata={"description": "区划代码（6 或 12 位），含下级"},
    )
    department = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^([1-9]\d{0,8})?$", error="部门编号应为正整数"),
        metadata={"description": "实施主体编号"},
    )
    type = fields.String(
        load_default=None,
        validate=validate.OneOf(["", *TASK_TYPES], error="事项类型取值无效"),
        metadata={"description": "事项类型代码，如 01、20"},
    )
    no_contact = fields.String(
        load_default=None,
        validate=validate.OneOf(
            ["", "1", "0", "true", "false", "True", "False", "yes", "no", "on", "off"],
            error="应为 true 或 false",
        ),
        metadata={"description": "true 只看不见面审批事项"},
    )
    depth = fields.String(
        load_default=None,
        validate=validate.OneOf(["", "1", "2", "3", "4"], error="网上办理深度等级应为 1–4（Ⅰ–Ⅳ）"),
        metadata={"description": "网上办理深度等级 1–4（Ⅰ–Ⅳ；4 为全程网办）"},
    )
    group = fields.String(
        load_default="service",
        validate=validate.OneOf(["service", "none"], error="group 取值应为 service 或 none"),
        metadata={
            "description": "service（默认）：每项服务（基本目录事项）一条结果，附可办理地点，total 与 facets "
            "按服务计数；none：每个实施清单条目一条（供机器按条目处理），total 与 facets 按条目计数"
        },
    )
    place = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^(\d{6}|\d{12})?$", error="区划代码应为 6 位或 12 位数字"),
        metadata={
            "description": "办事人所在地的区划代码（6 或 12 位）：每项服务的办理地点把该地及其所在"
            "镇（街道）、区排在最前；不筛选结果。未给出时取 division"
        },
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=engine.MAX_PAGE))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=engine.MAX_LIMIT))


class FacetValueSchema(BaseSchema):
    value = fields.Raw()
    label = fields.String()
    count = fields.Integer()


class FacetsSchema(BaseSchema):
    level = fields.List(fields.Nested(FacetValueSchema))
    division = fields.List(fields.Nested(FacetValueSchema))
    department = fields.List(fields.Nested(FacetValueSchema))
    type = fields.List(fields.Nested(FacetValueSchema))
    no_contact = fields.List(fields.Nested(FacetValueSchema))
    depth = fields.List(fields.Nested(FacetValueSchema))


class SearchHitSchema(BaseSchema):
    task_code = fields.String(metadata={"description": "实施编码"})
    name = fields.String(metadata={"description": "事项名称（与实施清单一致）"})
    department = fields.String()
    department_id = fields.Integer()
    level = fields.String()
    level_label = fields.String()
    division_code = fields.String()
    type = fields.String(metadata={"description": "事项类型代码"})
    type_label = fields.String()
    no_contact = fields.Boolean()
    matched_field = fields.String(metadata={"description": "name / keyword / department / material"})
    highlights = fields.List(
        fields.List(fields.Integer()), metadata={"description": "名称中命中的 [起, 止) 字符区间"}
    )
    url = fields.String()
    service = fields.Nested(
        "ServiceSchema",
        metadata={
            "description": "仅 group=service：这项服务及其可办理地点；条目字段为第一个地点（所在地优先）"
        },
    )


class PlaceSchema(BaseSchema):
    task_code = fields.String(metadata={"description": "该地实施清单的实施编码"})
    department = fields.String(metadata={"description": "实施主体（区级部门、镇街、村社区）"})
    department_id = fields.Integer()
    level = fields.String()
    level_label = fields.String()
    division_code = fields.String()
    no_contact = fields.Boolean()
    near = fields.Boolean(metadata={"description": "是否为办事人所在地（或其所在镇街、区）"})
    url = fields.String()


class ServiceSchema(BaseSchema):
    item_id = fields.Integer(
        allow_none=True, metadata={"description": "基本目录事项编号；无基本目录的条目为 null"}
    )
    place_count = fields.Integer(metadata={"description": "可办理地点总数（筛选条件下）"})
    places = fields.List(
        fields.Nested(PlaceSchema),
        metadata={"description": "可办理地点，所在地优先，最多 5 个；其余见 place_count"},
    )


class ElsewhereSchema(BaseSchema):
    name = fields.String(metadata={"description": "服务名称"})
    body = fields.String(metadata={"description": "办理机构（本区不办理，请到该机构办理）"})
    address = fields.String(allow_none=True, metadata={"description": "地址，未填报为 null"})
    phone = fields.String(allow_none=True, metadata={"description": "电话，未填报为 null"})
    url = fields.String(allow_none=True, metadata={"description": "网址，未填报为 null"})
    note = fields.String()
    verified = fields.Boolean(metadata={"description": "管理员是否已核实机构信息"})


class SearchResponseSchema(BaseSchema):
    query = fields.String()
    items = fields.List(fields.Nested(SearchHitSchema))
    total = fields.Integer(metadata={"description": "结果总数，单位见 count_unit"})
    grouped = fields.Boolean(metadata={"description": "是否每项服务一条（group=service）"})
    count_unit = fields.String(
        metadata={"description": "total、facets 与分页的计数单位：service（服务）或 entry（实施清单条目）"}
    )
    page = fields.Integer()
    limit = fields.Integer()
    facets = fields.Nested(FacetsSchema)
    variants = fields.List(
        fields.String(), metadata={"description": "实际参与匹配的词（含别名、去掉口语词后的词）"}
    )
    fuzzy = fields.Boolean(metadata={"description": "无精确结果时按错一字匹配"})
    # Attribute named apart from Schema.partial (marshmallow's own option); the JSON key is "partial".
    partial_match = fields.Boolean(
        data_key="partial",
        metadata={"description": "没有完全匹配的事项：结果是含查询大部分关键词的相近事项"},
    )
    suggestion = fields.String(
        allow_none=True, metadata={"description": "按读音纠正后的查询（如 采伐正 → 采伐证），无则为 null"}
    )
    elsewhere = fields.List(
        fields.Nested(ElsewhereSchema),
        metadata={"description": "查询涉及的本区不办理的服务及其办理机构（如住房公积金），无则为空列表"},
    )


class Open311ArgsSchema(BaseSchema):
    class Meta:
        unknown = EXCLUDE

    jurisdiction_id = fields.String(load_default=None)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=5000))


class Open311ServiceSchema(BaseSchema):
    service_code = fields.String()
    service_name = fields.String()
    description = fields.String()
    metadata = fields.Boolean()
    type = fields.String()
    keywords = fields.String()
    group = fields.String()


def hit_dict(hit: engine.Hit) -> dict[str, Any]:
    return {
        "task_code": hit.task_code,
        "name": hit.name,
        "department": hit.department,
        "department_id": hit.department_id,
        "level": hit.level,
        "level_label": USE_LEVELS.get(hit.level, ""),
        "division_code": hit.division_code,
        "type": hit.task_type,
        "type_label": TASK_TYPES.get(hit.task_type, hit.task_type),
        "no_contact": hit.no_contact,
        "matched_field": hit.matched_field,
        "highlights": [list(s) for s in hit.highlights],
        "url": url_for("portal.entry_detail", task_code=hit.task_code),
    }


def place_dict(place: Any) -> dict[str, Any]:
    return {
        "task_code": place.task_code,
        "department": place.department,
        "department_id": place.department_id,
        "level": place.level,
        "level_label": USE_LEVELS.get(place.level, ""),
        "division_code": place.division_code,
        "no_contact": place.no_contact,
        "near": place.near,
        "url": url_for("portal.entry_detail", task_code=place.task_code),
    }


def result_items(result: engine.SearchResult) -> list[dict[str, Any]]:
    """The items of a result as the API returns them (with their service when grouped)."""
    items = [hit_dict(h) for h in result.items]
    if result.grouped:
        for item, group in zip(items, result.services, strict=True):
            item["service"] = {
                "item_id": group.item_id,
                "place_count": group.place_count,
                "places": [place_dict(p) for p in group.places],
            }
    return items


def run_search(args: dict[str, Any]) -> engine.SearchResult:
    """Shared by the API and the portal pages: validate facets, search, log misses.

    Grouped by service unless ``group`` is "none"; the citizen's place is ``place``, else the
    division filter's.
    """
    place = (args.get("place") or "").strip() or None
    if place is not None and not (place.isdigit() and len(place) in (6, 12)):
        raise Invalid("查询参数有误", {"place": ["区划代码应为 6 位或 12 位数字"]})
    filters = engine.validate_filters(
        args.get("level"),
        args.get("division"),
        args.get("department"),
        args.get("type"),
        args.get("no_contact"),
        args.get("depth"),
    )
    return engine.search(
        db_session(),
        args.get("q"),
        filters,
        page=args.get("page", 1),
        limit=args.get("limit", 10),
        log_miss=True,
        group=args.get("group", "service") != "none",
        place=place or filters.division,
    )


@blp.route("/search")
class SearchView(MethodView):
    decorators = [limiter.limit("120/minute")]  # noqa: RUF012  (flask's View API is a class-level list)

    # An instance, not the class: webargs builds a schema from a class on every request (about a
    # fifth of a cached answer's cost in the profile, issue 14 item 10).
    @blp.arguments(SearchQueryArgsSchema(), location="query")
    @blp.response(200, SearchResponseSchema)
    @blp.alt_response(
        422, schema=ErrorSchema, description="参数取值无效（details 指明字段），例如未知的层级或事项类型"
    )
    def get(self, args: dict[str, Any]) -> Response:
        """搜索已发布的办事事项

        支持中文关键词（一个字起）、全拼（gongjijin）、首字母（gjj）、俗称（社保、开饭店要办什么证）与
        错一字的查询。结果按：名称完全一致 > 名称前缀 > 名称包含 > 名称含全部词 > 其他字段排序；
        `facets` 给出在其余筛选条件下各取值的条数，`total` 为当前筛选下的总数。

        默认（`group=service`）每项服务（基本目录事项）一条结果：各镇村认领的同一事项合为一条，
        `service.places` 列出可办理地点（`place` 或 `division` 所指的所在地优先），`total`、`facets`
        与分页都按服务计数（`count_unit` 为 service）。`group=none` 为逐条目的平铺模式（计数单位为条目）。
        """
        with search_scope() as version:
            return self._answer(args, version)

    def _answer(self, args: dict[str, Any], version: int | None) -> Response:
        session = db_session()
        cache = search_cache()
        key = (request.script_root, tuple(sorted(args.items())))
        cached = cache.get(version, key)
        if cached is not None:
            body, mimetype, missed = cached
            if missed:  # the miss is counted on every request that finds nothing, as uncached
                engine.log_zero_result(session, missed)
            return current_app.response_class(body, mimetype=mimetype)
        result = run_search(args)
        # The schema documents the shape; the payload is already plain JSON types, so it is sent as is
        # (dumping thousands of facet values through marshmallow costs more than the search).
        payload = {
            "query": result.query,
            "items": result_items(result),
            "total": result.total,
            "grouped": result.grouped,
            "count_unit": "service" if result.grouped else "entry",
            "page": result.page,
            "limit": result.limit,
            "facets": result.facets,
            "variants": result.variants,
            "fuzzy": result.fuzzy,
            "partial": result.partial,
            "suggestion": result.suggestion,
            "elsewhere": [
                {
                    "name": h.service.name,
                    "body": h.service.body,
                    "address": h.service.address,
                    "phone": h.service.phone,
                    "url": h.service.url,
                    "note": h.service.note,
                    "verified": h.service.verified,
                }
                for h in find_elsewhere(session, args.get("q"))
            ],
        }
        # run_search logged a miss under the same condition (catalog.search.query).
        missed = result.query if result.query and (result.total == 0 or result.partial) else None
        response = jsonify(payload)
        # The encoded body: a hit sends it as it is.
        cache.put(version, key, (response.get_data(), response.mimetype, missed))
        return response


@contextmanager
def search_scope() -> Iterator[int | None]:
    """Reads the search state token (yielded) before anything else of a search request, and keeps the
    small reads of the search under it (``catalog.search.cache.TokenMemo``): what is kept under a token
    is then at least as new as the token, as the answers in ``search_cache`` are."""
    version = engine.index_version(db_session().connection())
    memo = current_app.extensions.get("catalog.search_memo")
    if memo is None:
        memo = current_app.extensions.setdefault("catalog.search_memo", TokenMemo())
    with at_token(version, memo):
        yield version


def search_cache() -> ResultCache:
    """This app's cache of search answers (``SEARCH_CACHE_SIZE`` answers; 0 turns it off)."""
    cache = current_app.extensions.get("catalog.search_cache")
    if cache is None:
        cache = ResultCache(int(current_app.config.get("SEARCH_CACHE_SIZE", DEFAULT_SIZE)))
        current_app.extensions["catalog.search_cache"] = cache
    return cache


def _services(args: dict[str, Any]) -> list[dict[str, Any]]:
    jurisdiction = settings().district_code  # GB/T 2260 code of the district, e.g. 321203 高港区
    if args.get("jurisdiction_id") not in (None, "", jurisdiction):
        raise NotFound("未知的 jurisdiction_id", {"jurisdiction_id": [f"本服务只覆盖 {jurisdiction}"]})
    e = table_of(SearchEntry)
    ie = table_of(ImplementationEntry)
    offset = (args["page"] - 1) * args["limit"]
    rows = (
        db_session()
        .execute(
            sa.select(
                e.c.task_code,
                e.c.name,
                e.c.department_name,
                e.c.task_type,
                e.c.entry_id,
                ie.c.service_objects,
                ie.c.handle_item,
            )
            .join(ie, ie.c.id == e.c.entry_id)
            .order_by(e.c.entry_id)
            .offset(offset)
            .limit(args["limit"])
        )
        .all()
    )
    return [
        {
            "service_code": r.task_code,
            "service_name": r.name,
            "description": _description(r),
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(_keywords(r.name)),
            "group": TASK_TYPES.get(r.task_type, "其他"),
        }
        for r in rows
    ]


def _description(r: Any) -> str:
    """GeoReport's free-text description: who handles it, and the national elements Open311 has no
    field for but a client shows to the applicant (服务对象, 业务办理项), only when recorded."""
    text = f"{r.department_name}办理的{TASK_TYPES.get(r.task_type, '政务服务')}事项"
    if r.service_objects:
        objects = "、".join(SERVICE_OBJECTS.get(c, c) for c in r.service_objects.split(",") if c)
        text += f"；服务对象：{objects}"
    if r.handle_item:
        text += f"；业务办理项：{HANDLE_ITEMS.get(r.handle_item, r.handle_item)}"
    return text


def _keywords(name: str) -> list[str]:
    py, ini = engine.pinyin_of(engine.normalize_text(name))
    return [w for w in (py.replace(" ", ""), ini) if w]


@open311.route("/services.json")
class Open311ServicesJson(MethodView):
    @open311.arguments(Open311ArgsSchema, location="query")
    @open311.response(200, Open311ServiceSchema(many=True))
    @open311.alt_response(404, schema=ErrorSchema, description="未知的 jurisdiction_id")
    def get(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """GeoReport v2 服务列表（JSON）

        每个已发布事项一条：service_code 为实施编码，group 为事项类型，keywords 为名称全拼与首字母。
        扩展参数 page/limit（默认每页 1000 条）。
        """
        return _services(args)


@open311.route("/services.xml")
class Open311ServicesXml(MethodView):
    @open311.arguments(Open311ArgsSchema, location="query")
    @open311.response(200, description="GeoReport v2 服务列表（XML，规范要求的格式）")
    def get(self, args: dict[str, Any]) -> Response:
        """GeoReport v2 服务列表（XML）"""
        parts = ['<?xml version="1.0" encoding="utf-8"?>', "<services>"]
        for s in _services(args):
            parts.append(
                "<service>"
                + "".join(
                    f"<{k}>{xml_escape(str(v).lower() if isinstance(v, bool) else str(v))}</{k}>"
                    for k, v in s.items()
                )
                + "</service>"
            )
        parts.append("</services>")
        return Response("".join(parts), mimetype="application/xml")


# ----------------------------------------------------------------------------- CLI


@click.group("search", help="办事搜索：索引、合成数据、相关性评测")
def search_cli() -> None:
    pass


@search_cli.command("reindex")
@with_appcontext
def reindex_cmd() -> None:
    """根据已发布的实施清单重建全部检索索引。"""
    with database().transaction() as session:
        start = time.perf_counter()
        n = engine.rebuild_index(session, progress=True)
    click.echo(f"已索引 {n} 条已发布事项，用时 {time.perf_counter() - start:.1f} 秒")


@search_cli.command("load-aliases")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=engine.ALIASES_CSV,
    show_default=True,
    help="别名 CSV 文件（列：alias,targets,note）",
)
@with_appcontext
def load_aliases_cmd(path: Path) -> None:
    """从 CSV（列：alias,targets,note）导入或更新检索别名。"""
    try:
        rows = engine.read_aliases_csv(path)
    except Invalid as exc:
        raise click.ClickException(exc.message) from None
    with database().transaction() as session:
        # The command line acts as the system principal: the audit rows say so.
        n = engine.load_aliases(session, SYSTEM, rows)
    click.echo(f"已写入 {n} 条别名（新增或修改）")


@search_cli.command("misses")
@click.option("--limit", default=30, show_default=True, help="最多列出多少条")
@with_appcontext
def misses_cmd(limit: int) -> None:
    """列出最常见的无结果检索词。"""
    with database().transaction() as session:
        for m in engine.top_misses(session, limit):
            click.echo(f"{m.count:6d}  {m.query}")


@search_cli.command("purge-misses")
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=None,
    help="保留天数（缺省为 SEARCH_MISS_RETENTION_DAYS，默认 90 天）",
)
@with_appcontext
def purge_misses_cmd(days: int | None) -> None:
    """删除超过保留期的无结果搜索记录，并对其余记录中的个人信息脱敏。"""
    retention = days or settings().search_miss_retention_days
    with database().transaction() as session:
        result = purge_search_misses(session, retention)
    click.echo(f"已删除 {result.deleted} 条超过 {retention} 天的无结果搜索，已脱敏 {result.masked} 条")


@search_cli.command("evaluate")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=RELEVANCE_CSV,
    show_default=True,
    help="相关性标注 CSV 文件",
)
@click.option(
    "--current",
    is_flag=True,
    help="在当前配置的数据库上评估，而不是在真实目录的临时 SQLite 副本上评估",
)
@with_appcontext
def evaluate_cmd(path: Path, current: bool) -> None:
    """按调参集与留出集、启用与停用别名，分层输出 Recall@10、MRR@10、nDCG@10、无结果率等指标。"""
    try:
        queries = read_relevance(path)
    except Invalid as exc:
        raise click.ClickException(exc.message) from None
    if current:
        with database().transaction() as session:
            report = evaluate_splits(session, queries)
    else:
        report = evaluate_on_real_catalogue(queries)
    click.echo(format_report(report))


def evaluate_on_real_catalogue(queries: list[dict[str, Any]]) -> dict[str, Any]:
    """Import the real catalogue into a temporary SQLite for 高港区 and evaluate there."""
    with real_catalogue_session() as session:
        return evaluate_splits(session, queries)


@contextmanager
def real_catalogue_session() -> Iterator[Any]:
    """A session on a temporary SQLite holding the real catalogue imported for 高港区 (catalog.importer,
    as the foundation does; the importer indexes the entries it creates), removed afterwards."""
    from alembic import command
    from alembic.config import Config

    from catalog.divisions import GAOGANG_FILES, load_divisions_csv
    from catalog.importer import import_items_csv, read_department_map, read_uscc_map
    from core.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'eval.db'}"
        cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
        cfg.attributes["url"] = url
        cfg.attributes["skip_logging"] = True
        command.upgrade(cfg, "heads")
        db = Database(url)
        with db.transaction() as session:
            load_divisions_csv(session, *GAOGANG_FILES)
            imported = import_items_csv(
                session,
                REAL_ITEMS_CSV,
                "321203",
                progress=False,
                department_usccs=read_uscc_map(EVALUATION_USCC_MAP),
                department_names=read_department_map(EVALUATION_DEPARTMENT_MAP),
            )
            if imported.errors:
                raise click.ClickException(f"导入真实目录出错：{imported.errors[:3]}")
        try:
            with db.transaction() as session:
                yield session
        finally:
            db.engine.dispose()


def register(app: Flask, api: Any) -> None:
    from core.web import csrf

    csrf.exempt(blp)
    csrf.exempt(open311)
    api.register_blueprint(blp)
    api.register_blueprint(open311)
    app.cli.add_command(search_cli)
