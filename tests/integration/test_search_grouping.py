"""One result per service (issue 14 item 6): the API grouped and flat, counts of services, the
citizen's place first, the portal's remembered place picker, one query for the page's places.

A demo-like catalogue: every item is claimed by the district department, two streets and a
community, as the demo's towns and villages claim items. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from core.db import Database
from tests.conftest import make_settings
from tests.factories.catalog import DISTRICT, OTHER_TOWN, TOWN, VILLAGE, make_department, make_item
from tests.factories.search import publish

# Real names from data/service_items_guangan_511602.csv: twelve holding 补贴, two 最低生活保障.
SUBSIDIES = [
    "事实无人抚养儿童认定及基本生活补贴发放",
    "人民调解员补贴发放",
    "企业（单位）招用就业困难人员补贴申请",
    "住房保障家庭租赁补贴发放",
    "公益性岗位补贴申请",
    "创业培训补贴申请",
    "创业补贴申请",
    "困难残疾人生活补贴",
    "失业保险技能提升补贴申领",
    "就业技能培训补贴申请",
    "就业见习补贴申领",
    "就业重点群体生活费（含交通费）补贴申请",
]
MINIMUM = ["最低生活保障", "家庭经济困难儿童提供最低生活保障"]
PLACES_PER_ITEM = 4


@contextmanager
def _catalogue(database: Any) -> Iterator[Any]:
    conn = database.engine.connect()
    outer = conn.begin()
    builder = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        bodies = [
            make_department(builder, "区民政局"),
            make_department(builder, "口岸街道办事处", level="5", division_code=TOWN),
            make_department(builder, "刁铺街道办事处", level="5", division_code=OTHER_TOWN),
            make_department(builder, "柴墟社区居民委员会", level="6", division_code=VILLAGE),
        ]
        for name in SUBSIDIES + MINIMUM:
            item = make_item(builder, name=name, task_type="20", use_levels="4,5,6")
            for body in bodies:
                publish(builder, body, item)
        builder.flush()
        yield conn
    finally:
        builder.close()
        if outer.is_active:
            outer.rollback()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalogue(request: pytest.FixtureRequest) -> Iterator[Any]:
    database = request.getfixturevalue("sqlite_database" if request.param == "sqlite" else "pg_database")
    with _catalogue(database) as conn:
        yield conn, database


@pytest.fixture
def client(catalogue: Any, tmp_path: Path) -> Iterator[Any]:
    from webapp import create_app

    conn, database = catalogue
    savepoint = conn.begin_nested()
    bound = Database.__new__(Database)
    bound.url = database.url
    bound.engine = database.engine
    bound.sessionmaker = sessionmaker(
        bind=conn, class_=Session, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    yield create_app(make_settings(tmp_path, database.url), database=bound).test_client()
    if savepoint.is_active:
        savepoint.rollback()


def api(client: Any, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/search", query_string=params)
    assert r.status_code == 200, r.get_data(as_text=True)
    body: dict[str, Any] = r.get_json()
    return body


def test_first_page_shows_ten_distinct_services_counted_as_services(client: Any) -> None:
    body = api(client, q="补贴")
    assert body["grouped"] is True
    assert body["count_unit"] == "service"
    assert body["total"] == len(SUBSIDIES)
    names = [i["name"] for i in body["items"]]
    assert len(names) == 10
    assert len(set(names)) == 10
    assert len({i["service"]["item_id"] for i in body["items"]}) == 10
    assert all(i["service"]["place_count"] == PLACES_PER_ITEM for i in body["items"])
    # Facets count services: every service has an entry at each level and in each street.
    assert {f["value"]: f["count"] for f in body["facets"]["level"]} == {
        "4": len(SUBSIDIES),
        "5": len(SUBSIDIES),
        "6": len(SUBSIDIES),
    }
    assert {f["value"]: f["count"] for f in body["facets"]["division"]} == {
        DISTRICT: len(SUBSIDIES),
        TOWN: len(SUBSIDIES),
        OTHER_TOWN: len(SUBSIDIES),
    }


def test_the_second_page_holds_the_remaining_services(client: Any) -> None:
    first = {i["service"]["item_id"] for i in api(client, q="补贴")["items"]}
    second = {i["service"]["item_id"] for i in api(client, q="补贴", page=2)["items"]}
    assert len(second) == len(SUBSIDIES) - 10
    assert not first & second


def test_flat_mode_lists_every_entry_and_counts_entries(client: Any) -> None:
    body = api(client, q="补贴", group="none")
    assert body["grouped"] is False
    assert body["count_unit"] == "entry"
    assert body["total"] == len(SUBSIDIES) * PLACES_PER_ITEM
    assert "service" not in body["items"][0]
    assert len({i["name"] for i in body["items"]}) < 10  # the same service several times
    assert sum(f["count"] for f in body["facets"]["level"]) == body["total"]


def test_a_facet_count_is_what_choosing_it_shows(client: Any) -> None:
    body = api(client, q="最低生活保障")
    for facet in body["facets"]["level"]:
        assert api(client, q="最低生活保障", level=facet["value"])["total"] == facet["count"]


def test_the_citizens_place_comes_first_then_its_street_then_the_district(client: Any) -> None:
    body = api(client, q="最低生活保障", place=VILLAGE)
    places = body["items"][0]["service"]["places"]
    assert [p["division_code"] for p in places] == [VILLAGE, TOWN, DISTRICT, OTHER_TOWN]
    assert [p["near"] for p in places] == [True, True, True, False]
    # The result's own fields are its first place's: the title links to the citizen's own office.
    assert body["items"][0]["task_code"] == places[0]["task_code"]
    assert body["total"] == len(MINIMUM)


def test_without_a_place_the_district_department_comes_first(client: Any) -> None:
    places = api(client, q="最低生活保障")["items"][0]["service"]["places"]
    assert [p["level"] for p in places] == ["4", "5", "5", "6"]
    assert not any(p["near"] for p in places)


def test_the_division_filter_chooses_the_place_too(client: Any) -> None:
    body = api(client, q="最低生活保障", division=TOWN)
    places = body["items"][0]["service"]["places"]
    assert [p["division_code"] for p in places] == [TOWN, VILLAGE]


def test_a_bad_place_is_a_422_naming_the_field(client: Any) -> None:
    r = client.get("/api/v1/search", query_string={"q": "补贴", "place": "abc"})
    assert r.status_code == 422
    body = r.get_json()
    assert set(body) >= {"code", "message", "details"}
    assert "place" in str(body["details"])
    r = client.get("/api/v1/search", query_string={"q": "补贴", "group": "entries"})
    assert r.status_code == 422


def test_browsing_a_street_groups_by_service(client: Any) -> None:
    body = api(client, division=OTHER_TOWN, limit=50)
    assert body["total"] == len(SUBSIDIES) + len(MINIMUM)
    assert all(i["division_code"] == OTHER_TOWN for i in body["items"])


def test_the_page_reads_its_places_with_one_query_whatever_its_size(client: Any) -> None:
    engine = client.application.extensions["gaogang.db"].engine
    # The first search under a search state token also reads what is then kept under it (the alias
    # table, the elsewhere list, facet names: catalog.search.cache.TokenMemo), so both counted pages
    # come after one.
    api(client, q="补贴", limit=5)
    counts = []
    for limit in (1, 10):
        statements: list[str] = []

        def count(*args: Any, sink: list[str] = statements) -> None:
            sink.append(str(args[2])[:40])

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            api(client, q="补贴", limit=limit)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        counts.append(len(statements))
    assert counts[0] == counts[1]


def test_a_service_with_more_places_than_a_page_lists_shows_the_nearest_and_counts_all(
        catalogue: Any, client: Any) -> None:
    """A service claimed in eight places lists five (grouping.MAX_PLACES), in the order the docstring of
    page_places gives, and counts all eight; under a filter both follow the filter."""
    conn, _database = catalogue
    builder = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    villages = [f"321203001{n:03d}" for n in (2, 3, 4, 5)]  # 育才, 龙窝口, 新城, 城南 (口岸街道)
    # Names the module's catalogue does not use (a department's USCC is derived from its name).
    places = [("区应急管理局", DISTRICT, "4"), ("口岸街道便民服务中心", TOWN, "5"),
              ("刁铺街道便民服务中心", OTHER_TOWN, "5"), ("柴墟社区便民服务站", VILLAGE, "6")]
    places += [(f"社区居委会{code[-3:]}", code, "6") for code in villages]
    bodies = [(make_department(builder, name, level=level, division_code=code), code, level)
              for name, code, level in places]
    item = make_item(builder, name="重度残疾人护理补贴", task_type="20", use_levels="4,5,6")
    for body, _code, _level in bodies:
        publish(builder, body, item)
    builder.commit()  # releases its savepoint: the rows stay in the client's, rolled back after the test
    builder.close()

    def shown(**params: Any) -> tuple[list[str], int]:
        (service,) = [i["service"] for i in api(client, q="重度残疾人护理补贴", **params)["items"]
                      if i["name"] == "重度残疾人护理补贴"]
        return [p["division_code"] for p in service["places"]], service["place_count"]

    by_level = sorted((level, code) for _b, code, level in bodies)
    assert shown() == ([code for _level, code in by_level[:5]], 8)
    # 育才社区 first, then its street and the district, then the rest by level and code.
    assert shown(place=villages[0]) == ([villages[0], TOWN, DISTRICT, OTHER_TOWN, VILLAGE], 8)
    # A street: itself, the district, then the divisions under it before the rest.
    assert shown(place=TOWN) == ([TOWN, DISTRICT, VILLAGE, villages[0], villages[1]], 8)
    assert shown(level="6") == ([VILLAGE, *villages], 5)
    assert shown(level="5") == ([TOWN, OTHER_TOWN], 2)
    # Its bodies differ from the other services' (区应急管理局 beside 区民政局 …), so a facet value is
    # reached through rows of different services: each count is still the services under it.
    assert api(client, q="补贴")["total"] == len(SUBSIDIES) + 1
    _grouped_counts_are_flat_services(client, "补贴")


def test_the_portal_shows_each_service_once_with_where_to_go(client: Any) -> None:
    page = client.get("/search", query_string={"q": "补贴"}).get_data(as_text=True)
    assert "共找到 <strong>12</strong> 项服务" in page
    assert page.count('class="hit card"') == 10
    assert "口岸街道办事处" in page
    assert "共 4 处可办理" in page


def test_the_portal_remembers_the_place_in_a_cookie(client: Any) -> None:
    r = client.get("/search", query_string={"q": "最低生活保障", "place": VILLAGE})
    assert r.status_code == 200
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("place="))
    assert VILLAGE in cookie
    assert "SameSite=Lax" in cookie
    page = client.get("/search", query_string={"q": "最低生活保障"}).get_data(as_text=True)
    # The remembered place is selected in the picker and listed first under the service.
    assert f'<option value="{VILLAGE}" selected' in page
    first_place = page.index('class="places"')
    assert page.index("柴墟社区居民委员会", first_place) < page.index("区民政局", first_place)
    # Choosing "不限" forgets it.
    r = client.get("/search", query_string={"q": "最低生活保障", "place": ""})
    assert any(h.startswith("place=;") or "place=;" in h for h in r.headers.getlist("Set-Cookie"))


def _flat_services(client: Any, **params: Any) -> set[str]:
    """The services among every flat hit (each item's name is its own here), all pages read."""
    names: set[str] = set()
    page = 1
    while True:
        body = api(client, group="none", limit=100, page=page, **params)
        names |= {hit["name"] for hit in body["items"]}
        if page * 100 >= body["total"]:
            return names
        page += 1


@pytest.mark.parametrize("q", ["补贴", "最低生活保障", "申请", "民政", "街道"])
def test_grouped_counts_are_the_flat_hits_services_under_every_facet_value(client: Any, q: str) -> None:
    # 民政 and 街道 reach entries through the department field too (the non-name path).
    for base in ({}, {"division": TOWN}, {"level": "6"}):
        _grouped_counts_are_flat_services(client, q, **base)


def _grouped_counts_are_flat_services(client: Any, q: str, **base: Any) -> None:
    """The grouped total and every facet count (services, counted in catalog.search.grouping) are the
    number of services among the flat hits under the same filters."""
    body = api(client, q=q, **base)
    assert body["total"] == len(_flat_services(client, q=q, **base)), (q, base)
    for facet in ("level", "division", "department", "type"):
        for value in body["facets"][facet]:
            chosen = {**base, facet: value["value"]}
            assert value["count"] == len(_flat_services(client, q=q, **chosen)), (q, chosen)
