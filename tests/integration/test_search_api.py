"""GET /api/v1/search, the Open311 service list, the public portal pages and the alias admin page,
through the Flask test client on the rolled-back PostgreSQL."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from catalog import entries as entry_services
from catalog.search import aliases
from catalog.search_models import SearchAlias, SearchMiss
from core.audit import AuditLog
from core.auth import SYSTEM, Role
from core.config import PROJECT_ROOT
from core.db import Database
from tests.conftest import make_settings
from tests.factories.catalog import make_user
from tests.factories.search import NAMES, shared_catalogue


@pytest.fixture(scope="module")
def shared(pg_database: Any) -> Any:
    """The factory catalogue plus an administrator and an editor, built once for this module."""
    with shared_catalogue(pg_database) as (conn, handles):
        with Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
            handles["admin_token"] = make_user(s, Role.ADMIN)[2]
            handles["editor_token"] = make_user(s, Role.DEPT_EDITOR, department=handles["depts"][0])[2]
            s.commit()  # releases into the module transaction, which is rolled back at the end
        yield conn, handles


@pytest.fixture
def world(shared: Any) -> dict[str, Any]:
    return shared[1]


@pytest.fixture(scope="module")
def shared_app(shared: Any, pg_database: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One app for the module, its sessions inside the shared catalogue's transaction."""
    from webapp import create_app

    bound = Database.__new__(Database)
    bound.url = pg_database.url
    bound.engine = pg_database.engine
    bound.sessionmaker = sessionmaker(
        bind=shared[0], class_=Session, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    settings = make_settings(tmp_path_factory.mktemp("search-api"), pg_database.url)
    flask_app = create_app(settings, database=bound)
    flask_app.config["WTF_CSRF_ENABLED"] = False
    return flask_app


@pytest.fixture
def app(shared: Any, shared_app: Any) -> Iterator[Any]:
    """The app on the shared catalogue; everything a test's requests commit is rolled back after it."""
    savepoint = shared[0].begin_nested()
    yield shared_app
    if savepoint.is_active:
        savepoint.rollback()


def test_search_api_returns_items_total_and_facets(client: Any, world: dict[str, Any]) -> None:
    r = client.get("/api/v1/search", query_string={"q": "社会保障卡", "limit": 3, "group": "none"})
    assert r.status_code == 200
    body = r.get_json()
    assert set(body) >= {"items", "total", "facets", "page", "limit", "query"}
    assert body["total"] == 4 + 1  # four county entries and the town's 社会保障卡挂失 (flat: entries)
    assert len(body["items"]) == 3
    item = body["items"][0]
    assert set(item) >= {"task_code", "name", "department", "level", "division_code", "no_contact", "type"}
    assert item["name"] in NAMES  # the entry's name exactly
    with client.application.extensions["gaogang.db"].session() as s:
        entry = entry_services.get_entry_by_task_code(s, item["task_code"])
    assert entry.name == item["name"]
    assert {f["value"] for f in body["facets"]["level"]} == {"4", "5"}
    assert sum(f["count"] for f in body["facets"]["type"]) == body["total"]


def test_search_api_filters_narrow_the_total_and_keep_other_facets(
    client: Any, world: dict[str, Any]
) -> None:
    base = client.get("/api/v1/search?q=登记").get_json()
    town = client.get(f"/api/v1/search?q=登记&division={world['town_code']}").get_json()
    assert 0 < town["total"] < base["total"]
    assert all(i["division_code"] == world["town_code"] for i in town["items"])
    level = client.get("/api/v1/search?q=登记&level=5&no_contact=false").get_json()
    assert level["total"] == town["total"]
    dept_id = world["depts"][0].id
    dept = client.get(f"/api/v1/search?q=登记&department={dept_id}").get_json()
    assert all(i["department"].startswith("区人社局") for i in dept["items"])
    nc = client.get("/api/v1/search?q=登记&no_contact=true").get_json()
    assert nc["total"] == 0
    assert nc["items"] == []


BAD_FACETS = [
    "level=9",
    "type=xx",
    "division=abc",
    "department=-1",
    "department=99999999999999999999",
    "no_contact=maybe",
    "page=0",
    "limit=1000",
    "page=abc",
]
ODD_QUERIES = ["", "   ", "社" * 1000, "' OR 1=1 --", "<b>护照</b>", "%_%"]


def test_unknown_facet_values_are_a_422_in_the_error_shape(client: Any, world: dict[str, Any]) -> None:
    for query in BAD_FACETS:
        r = client.get(f"/api/v1/search?q=社保&{query}")
        assert r.status_code == 422, query
        body = r.get_json()
        assert set(body) == {"code", "message", "details"}
        assert body["details"], query


def test_odd_queries_are_answered_with_200(client: Any, world: dict[str, Any]) -> None:
    for q in ODD_QUERIES:
        r = client.get("/api/v1/search", query_string={"q": q})
        assert r.status_code == 200, q
        assert r.get_json()["total"] >= 0


def test_control_characters_in_a_query_are_a_422_naming_q(client: Any, world: dict[str, Any]) -> None:
    r = client.get("/api/v1/search", query_string={"q": "\x00\x07"})
    assert r.status_code == 422
    assert "q" in r.get_json()["details"]


def test_page_beyond_the_end_is_empty_not_an_error(client: Any, world: dict[str, Any]) -> None:
    body = client.get("/api/v1/search?q=社保&page=1000&limit=100").get_json()
    assert body["items"] == []
    assert body["total"] > 0


def test_search_is_documented_in_openapi(client: Any) -> None:
    spec = client.get("/api/openapi.json").get_json()
    op = spec["paths"]["/api/v1/search"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"q", "level", "division", "department", "type", "no_contact", "page", "limit"} <= names
    assert "/open311/v2/services.json" in spec["paths"]


def test_open311_service_list_uses_the_georeport_fields(client: Any, world: dict[str, Any]) -> None:
    with (PROJECT_ROOT / "data" / "open311_georeport_v2_service_fields.csv").open(encoding="utf-8") as fh:
        fields = {row["field"] for row in csv.DictReader(fh) if row["element"] == "services"}
    body = client.get("/open311/v2/services.json").get_json()
    assert len(body) == len(NAMES) + 5
    assert set(body[0]) == fields
    assert body[0]["type"] in {"realtime", "batch", "blackbox"}
    assert client.get("/open311/v2/services.json?jurisdiction_id=110101").status_code == 404
    xml = client.get("/open311/v2/services.xml?limit=2")
    assert xml.status_code == 200
    assert xml.data.count(b"<service>") == 2


def test_portal_home_browse_and_results_pages(client: Any, world: dict[str, Any]) -> None:
    home = client.get("/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert 'name="q"' in html
    assert "口岸街道" in html
    assert "按主题" in html
    assert "区人社局" in html
    assert client.get("/divisions").status_code == 200
    results = client.get("/search?q=护照").get_data(as_text=True)
    assert re.search(r"<mark>[^<]*护照</mark>", results)
    assert "共找到 <strong>1</strong> 项" in results
    browse = client.get(f"/search?division={world['town_code']}").get_data(as_text=True)
    assert browse.count('class="hit card"') == 5


def _division_names(client: Any, *codes: str) -> list[str]:
    from catalog.models import Division

    with client.application.extensions["gaogang.db"].session() as s:
        return [s.get(Division, code).name for code in codes]


def test_browsing_a_town_names_it_in_the_heading(client: Any, world: dict[str, Any]) -> None:
    (town,) = _division_names(client, world["town_code"])
    html = client.get(f"/search?division={world['town_code']}").get_data(as_text=True)
    assert re.search(rf'<h1 class="place-heading">\s*{town}的办事事项</h1>', html)
    assert f"<title>{town}的办事事项" in html
    searched = client.get(f"/search?q=低保&division={world['town_code']}").get_data(as_text=True)
    assert re.search(rf'<h1 class="place-heading">\s*{town}：“低保”的搜索结果</h1>', searched)


def test_a_village_without_entries_says_so_and_links_to_its_towns_entries(
    client: Any, world: dict[str, Any]
) -> None:
    from tests.factories.catalog import VILLAGE

    town, village = _division_names(client, world["town_code"], VILLAGE)
    html = client.get(f"/search?division={VILLAGE}").get_data(as_text=True)
    assert re.search(rf'<h1 class="place-heading">{town} · {village}的办事事项</h1>', html)
    assert f"{village}暂无本村（社区）自己办理的事项" in html
    assert f'href="/search?division={world["town_code"]}"' in html
    # The town's link leads to the town's entries (the five town-level entries of the factory).
    assert (
        client.get(f"/search?division={world['town_code']}").get_data(as_text=True).count('class="hit card"')
        == 5
    )
    searched = client.get(f"/search?q=低保&division={VILLAGE}").get_data(as_text=True)
    assert f"{village}暂无本村（社区）自己办理的相关事项" in searched
    assert re.search(rf'href="/search\?q=%E4%BD%8E%E4%BF%9D&amp;division={world["town_code"]}"', searched)


def test_portal_escapes_every_user_string(client: Any, world: dict[str, Any]) -> None:
    html = client.get("/search", query_string={"q": "<script>alert(1)</script>\"'"}).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    bad = client.get("/search?q=社保&level=<i>x</i>")
    assert bad.status_code == 200
    assert "<i>x</i>" not in bad.get_data(as_text=True)


def test_entry_detail_shows_what_to_bring_how_long_how_much_where(client: Any, world: dict[str, Any]) -> None:
    entry = world["entries"][NAMES[5]]
    page = client.get(f"/entries/{entry.task_code}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in (
        NAMES[5],
        "待遇领取资格认证表",
        "5 个工作日",
        "不收费",
        "高港区政务服务中心 3 号窗口",
        "0523-86901234",
    ):
        assert text in html
    assert client.get(f"/entries/{world['draft'].task_code}").status_code == 404
    assert client.get("/entries/" + "9" * 31).status_code == 404
    assert client.get("/entries/" + "9" * 300).status_code == 404


def test_alias_admin_page_is_for_administrators_only(client: Any, world: dict[str, Any]) -> None:
    assert client.get("/admin/search/aliases").status_code == 401
    editor = {"Authorization": f"Bearer {world['editor_token']}"}
    assert client.get("/admin/search/aliases", headers=editor).status_code == 403
    admin = {"Authorization": f"Bearer {world['admin_token']}"}
    page = client.get("/admin/search/aliases", headers=admin)
    assert page.status_code == 200
    assert "社保" in page.get_data(as_text=True)


def test_administrator_adds_an_alias_from_a_logged_miss(client: Any, world: dict[str, Any]) -> None:
    admin = {"Authorization": f"Bearer {world['admin_token']}"}
    assert client.get("/api/v1/search?q=蜂农").get_json()["total"] == 0
    page = client.get("/admin/search/aliases", headers=admin).get_data(as_text=True)
    assert "蜂农" in page  # the miss is listed with an "add alias" link
    bad = client.post("/admin/search/aliases", headers=admin, data={"alias": "", "targets": ""})
    assert bad.status_code == 422
    assert "别名不能为空" in bad.get_data(as_text=True)
    r = client.post("/admin/search/aliases", headers=admin, data={"alias": "蜂农", "targets": "养蜂证"})
    assert r.status_code == 302
    hits = client.get("/api/v1/search?q=蜂农").get_json()
    assert hits["items"][0]["name"] == "养蜂证换证"
    page = client.get("/admin/search/aliases", headers=admin).get_data(as_text=True)
    alias_id = re.search(r"/admin/search/aliases/(\d+)/delete", page)
    assert alias_id


def test_cli_reindex_evaluate_and_bad_alias_file(app: Any, world: dict[str, Any], tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert f"已索引 {len(NAMES) + 5} 条" in result.output
    rel = tmp_path / "rel.csv"
    rel.write_text(
        "stratum,query,relevant\nexact,普通护照签发,普通护照签发\npinyin,huzhao,普通护照签发\nno_answer,时光机,\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["search", "evaluate", "--current", "--file", str(rel)])
    assert result.exit_code == 0, result.output
    assert "exact" in result.output
    assert "1.000" in result.output
    assert "0/2 = 0.0%" in result.output
    bad = tmp_path / "aliases.csv"
    bad.write_text("alias,targets,note\n社保,社会保险,\n,空目标,\n", encoding="utf-8")
    result = runner.invoke(args=["search", "load-aliases", "--file", str(bad)])
    assert result.exit_code != 0
    assert "第 3 行" in result.output
    broken = tmp_path / "rel_bad.csv"
    broken.write_text("stratum,query,relevant\nkeyword,社保,\n", encoding="utf-8")
    result = runner.invoke(args=["search", "evaluate", "--current", "--file", str(broken)])
    assert result.exit_code != 0
    assert "第 2 行" in result.output


def _alias_audit(app: Any) -> list[tuple[str, str, Any, Any]]:
    with app.extensions["gaogang.db"].session() as s:
        rows = s.execute(
            sa.select(AuditLog).where(AuditLog.entity_type == "search_alias").order_by(AuditLog.id)
        ).scalars()
        return [(r.action, r.actor_name, r.old, r.new) for r in rows]


def test_alias_admin_page_writes_are_audited_with_the_administrator(
    app: Any, client: Any, world: dict[str, Any]
) -> None:
    admin = {"Authorization": f"Bearer {world['admin_token']}"}
    before = len(_alias_audit(app))
    r = client.post("/admin/search/aliases", headers=admin, data={"alias": "蜂农", "targets": "养蜂证"})
    assert r.status_code == 302
    with app.extensions["gaogang.db"].session() as s:
        alias_id = s.execute(sa.select(SearchAlias.id).where(SearchAlias.alias == "蜂农")).scalar_one()
    r = client.post(f"/admin/search/aliases/{alias_id}/delete", headers=admin)
    assert r.status_code == 302
    rows = _alias_audit(app)[before:]
    assert [(action, old, new) for action, _actor, old, new in rows] == [
        (aliases.ALIAS_SAVED, None, {"alias": "蜂农", "targets": "养蜂证", "note": ""}),
        (aliases.ALIAS_DELETED, {"alias": "蜂农", "targets": "养蜂证", "note": ""}, None),
    ]
    assert {actor for _action, actor, _old, _new in rows} != {"system"}


def test_cli_load_aliases_is_audited_as_the_system_and_skips_unchanged_rows(
    app: Any, world: dict[str, Any], tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    good = tmp_path / "aliases.csv"
    good.write_text("alias,targets,note\n蜂农,养蜂证,测试\n", encoding="utf-8")
    before = len(_alias_audit(app))
    result = runner.invoke(args=["search", "load-aliases", "--file", str(good)])
    assert result.exit_code == 0, result.output
    assert "已写入 1 条别名" in result.output
    assert _alias_audit(app)[before:] == [
        (aliases.ALIAS_SAVED, "system", None, {"alias": "蜂农", "targets": "养蜂证", "note": "测试"})
    ]
    result = runner.invoke(args=["search", "load-aliases", "--file", str(good)])
    assert result.exit_code == 0, result.output
    assert "已写入 0 条别名" in result.output
    assert len(_alias_audit(app)) == before + 1


def _elsewhere_audit(app: Any) -> list[tuple[str, Any, Any]]:
    with app.extensions["gaogang.db"].session() as s:
        rows = s.execute(
            sa.select(AuditLog.action, AuditLog.old, AuditLog.new)
            .where(AuditLog.entity_type == "elsewhere_service")
            .order_by(AuditLog.id)
        ).all()
    return [tuple(r) for r in rows]


def test_a_service_the_district_does_not_handle_is_found_with_where_to_go(client: Any) -> None:
    # The migration's seed row (unverified demo content: the body only).
    for q in ("gongjijin", "公积金提取", "住房公积金怎么取"):
        html = client.get("/search", query_string={"q": q}).get_data(as_text=True)
        assert "本区不办理，请到<strong>泰州市住房公积金管理中心</strong>办理" in html, q
        assert "信息待核实" in html
        assert "<dd>未填报</dd>" in html  # no address was sourced: unknown, not a made-up one
    html = client.get("/search", query_string={"q": "护照"}).get_data(as_text=True)
    assert "本区不办理" not in html
    api = client.get("/api/v1/search", query_string={"q": "gongjijin"}).get_json()
    assert [(e["body"], e["address"], e["verified"]) for e in api["elsewhere"]] == [
        ("泰州市住房公积金管理中心", None, False)
    ]
    assert client.get("/api/v1/search", query_string={"q": "护照"}).get_json()["elsewhere"] == []


def test_administrator_maintains_the_list_of_services_handled_elsewhere(
    app: Any, client: Any, world: dict[str, Any]
) -> None:
    assert client.get("/admin/search/elsewhere").status_code == 401
    editor = {"Authorization": f"Bearer {world['editor_token']}"}
    assert client.get("/admin/search/elsewhere", headers=editor).status_code == 403
    assert client.post("/admin/search/elsewhere", headers=editor, data={"name": "x"}).status_code == 403
    admin = {"Authorization": f"Bearer {world['admin_token']}"}
    page = client.get("/admin/search/elsewhere", headers=admin).get_data(as_text=True)
    assert "泰州市住房公积金管理中心" in page
    assert "待核实" in page
    before = len(_elsewhere_audit(app))
    form = {
        "name": "港澳通行证办理",
        "words": "港澳通行证|通行证续签",
        "body": "泰州市公安局出入境管理支队",
        "phone": "0523-1234567",
        "url": "ftp://example",
    }
    bad = client.post("/admin/search/elsewhere", headers=admin, data=form)
    assert bad.status_code == 422
    assert "网址应以 http:// 或 https:// 开头" in bad.get_data(as_text=True)
    assert len(_elsewhere_audit(app)) == before  # nothing half-written
    r = client.post("/admin/search/elsewhere", headers=admin, data={**form, "url": "https://example.org/gat"})
    assert r.status_code == 302
    html = client.get("/search", query_string={"q": "港澳通行证续签"}).get_data(as_text=True)
    assert "本区不办理，请到<strong>泰州市公安局出入境管理支队</strong>办理" in html
    assert "0523-1234567" in html
    assert 'href="https://example.org/gat"' in html
    page = client.get("/admin/search/elsewhere", headers=admin).get_data(as_text=True)
    ids = re.findall(r"/admin/search/elsewhere/(\d+)/delete", page)
    assert ids
    created = max(int(i) for i in ids)
    r = client.post(f"/admin/search/elsewhere/{created}/delete", headers=admin)
    assert r.status_code == 302
    html = client.get("/search", query_string={"q": "港澳通行证续签"}).get_data(as_text=True)
    assert "本区不办理" not in html
    audit_rows = _elsewhere_audit(app)[before:]
    assert [a for a, _old, _new in audit_rows] == ["search.elsewhere_saved", "search.elsewhere_deleted"]
    assert audit_rows[0][2]["body"] == "泰州市公安局出入境管理支队"
    assert audit_rows[1][1]["name"] == "港澳通行证办理"


# ---- the API's cache of answers (catalog.search.cache), keyed by the search state token ----------------


def _token(app: Any) -> int | None:
    from catalog.search import index_version

    with app.extensions["gaogang.db"].session() as s:
        return index_version(s.connection())


def test_a_cached_answer_is_dropped_when_an_entry_leaves_the_index(
    client: Any, world: dict[str, Any]
) -> None:
    from catalog.search_api import search_cache

    args = {"q": "社会保障卡", "group": "none", "limit": 20}
    first = client.get("/api/v1/search", query_string=args)
    assert first.get_json()["total"] == 5
    with client.application.app_context():
        cache = search_cache()
    hits = cache.hits
    again = client.get("/api/v1/search", query_string=args)
    assert cache.hits == hits + 1  # served from the cache, the same bytes
    assert again.get_data() == first.get_data()
    token = _token(client.application)
    gone = first.get_json()["items"][0]
    with client.application.extensions["gaogang.db"].session() as s:
        entry = entry_services.get_entry_by_task_code(s, gone["task_code"])
        entry_services.retire_entry(s, SYSTEM, entry.id, reason="职能调整")
        s.commit()
    assert _token(client.application) != token
    after = client.get("/api/v1/search", query_string=args).get_json()
    assert after["total"] == 4
    assert gone["task_code"] not in {i["task_code"] for i in after["items"]}


def test_searching_keeps_the_token_and_a_cached_miss_is_still_counted(
    client: Any, world: dict[str, Any]
) -> None:
    token = _token(client.application)
    for _ in range(3):
        assert client.get("/api/v1/search?q=蜂蜜农场").get_json()["total"] == 0
    assert _token(client.application) == token  # a search (and its logged miss) changes no answer
    with client.application.extensions["gaogang.db"].session() as s:
        count = s.execute(sa.select(SearchMiss.count).where(SearchMiss.query == "蜂蜜农场")).scalar()
    assert count == 3  # once computed, twice from the cache


def test_a_new_elsewhere_service_shows_on_a_cached_query(client: Any, world: dict[str, Any]) -> None:
    from catalog.search.elsewhere import save_elsewhere

    assert client.get("/api/v1/search?q=热气球驾驶").get_json()["elsewhere"] == []
    with client.application.extensions["gaogang.db"].session() as s:
        save_elsewhere(s, SYSTEM, {"name": "热气球驾驶执照", "words": "热气球", "body": "民航地区管理局"})
        s.commit()
    body = client.get("/api/v1/search?q=热气球驾驶").get_json()
    assert [e["body"] for e in body["elsewhere"]] == ["民航地区管理局"]
