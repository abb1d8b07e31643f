"""Definitions 3.0 on the real databases: licence figures from what the real reference city registry
acknowledged (over HTTP), cumulative case figures on PostgreSQL and the embedded SQLite, the dashboard's
cumulative figures beside the yearly ones, and two snapshots compared side by side.

Every expected figure is worked out by hand in the comments next to it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlmodel import Session

from core.auth import SYSTEM
from core.types import CHINA_TZ, utcnow
from licenses import issuing, sync
from licenses import types as licence_types
from reports import cases, metrics, services, snapshot, snapshot_compare
from reports.models import Snapshot
from tests.factories.licences import ORG_TYPE, PERSON_TYPE, make_staff, make_types, person_licence
from tests.factories.reports import (
    YEAR,
    backdate,
    build_world,
    case_rows,
    csv_text,
    import_csv,
    signed_in_admin,
)
from tests.factories.sync import RegistryProcess, emptied_client, running_registry
from workers.registry_client import RegistryClient


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    yield from running_registry(tmp_path_factory.mktemp("registry"))


@pytest.fixture
def registry_client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    yield from emptied_client(registry)


def _send(session: Session, client: RegistryClient) -> int:
    """One drain batch to the real registry; the records it accepts are marked sent (acknowledged)."""
    outcome = sync.send_batch(session, client, 100)
    session.flush()
    return outcome.sent


def test_licence_figures_count_what_the_city_registry_acknowledged(
    session: Session, registry_client: RegistryClient
) -> None:
    world = build_world(session)
    make_types(session)
    # 关联事项 "produces": e1 (区市场监管局) the person type, e2 (区民政局) the organisation type.
    for code, entry in ((PERSON_TYPE, world["e1"]), (ORG_TYPE, world["e2"])):
        licence_types.link_type_entry(session, SYSTEM, code, task_code=entry.task_code, role="produces")
    market = make_staff(session, "区市场监管局", "91000001", "fig_market")  # the world's d1
    transport = make_staff(session, "区交通运输局", "91000098", "fig_transport")  # no producing entry
    assert market.department.id == world["d1"].id
    first = person_licence(session, market, 1)
    person_licence(session, market, 2)
    person_licence(session, transport, 3)
    assert _send(session, registry_client) == 3  # three issue records acknowledged
    issuing.suspend_licence(session, market.actor, first.id, "核查")
    assert _send(session, registry_client) == 1
    issuing.resume_licence(session, market.actor, first.id)
    assert _send(session, registry_client) == 1
    person_licence(session, market, 4)  # recorded, not yet sent
    session.flush()

    year = utcnow().astimezone(CHINA_TZ).year
    facts = services.load_facts(session, year)
    results = metrics.compute_all(facts)
    # Issued this year and in all: four first versions (three by 区市场监管局, one by 区交通运输局).
    assert results["licences_issued"].value == 4
    assert results["licences_issued_cumulative"].value == 4
    # Versions acknowledged: the first three licences (the fourth waits); the suspend and the resume
    # of the first are two more change events of the same version: 3 records, 5 events.
    for key, value in (
        ("licences_pushed", 3),
        ("licences_pushed_cumulative", 3),
        ("sync_events_sent", 5),
        ("sync_events_sent_cumulative", 5),
    ):
        result = results[key]
        assert isinstance(result, metrics.Count)
        assert result.value == value, key
        assert result.ids == tuple(sorted((market.department.id, transport.department.id))), key
    # Coverage: departments with a published producing entry are d1 and d2; d1 has acknowledged records.
    coverage = results["licence_department_coverage"]
    assert isinstance(coverage, metrics.Rate)
    assert (coverage.numerator, coverage.denominator) == (1, 2)
    assert coverage.numerator_ids == (world["d1"].id,)
    assert coverage.denominator_ids == tuple(sorted((world["d1"].id, world["d2"].id)))
    by_dept = results["licence_coverage_by_department"]
    assert isinstance(by_dept, metrics.Table)
    assert {row.code: row.values for row in by_dept.rows} == {
        str(world["d1"].id): (1, 1, 2),
        str(world["d2"].id): (1, 1, 0),
        str(transport.department.id): (0, 0, 1),  # pushes, but no entry of it is linked as producing
    }
    assert {row.code: row.ids for row in by_dept.rows}[str(world["d1"].id)] == (world["e1"].id,)

    # PostgreSQL groups in SQL; the Python definitions over the rows give the same groups.
    licences, pushes = services.load_licence_rows(session, facts.as_of)
    assert facts.licences == metrics.group_licences(licences, facts)
    assert facts.acks == metrics.group_acks(pushes, facts)
    assert facts.pushes == metrics.group_pushes(pushes, facts)


def _cases(session: Session, world: dict[str, Any], accepted: list[tuple[str, date]]) -> None:
    rows = [
        (i + 2, {"project_no": f"FIG{i:04d}", "task_code": world[key].task_code,
                 "accept_date": day.isoformat(), "channel": "online"})
        for i, (key, day) in enumerate(accepted)
    ]
    cases.import_cases(session, SYSTEM, iter(rows), today=date(YEAR, 12, 31))


def test_cumulative_cases_add_up_the_years_on_both_databases(any_session: Session) -> None:
    session = any_session
    world = build_world(session)
    e1, e2 = world["e1"].task_code, world["e2"].task_code
    import_csv(session, csv_text([f"{e1},2024-05,10,5,10,10", f"{e2},2024-06,5,0,5,5"]), year=2024)
    import_csv(session, csv_text(case_rows(world)))  # 2025: e1 Jan 100, Feb 50; e2 Jan 30; e3 Mar 7
    # Three case records of e1 accepted in January 2025 replace that month's aggregate (100 → 3).
    _cases(session, world, [("e1", date(YEAR, 1, d)) for d in (6, 7, 8)])
    figures = {y: services.compute_metrics(session, y) for y in (2024, YEAR)}  # as of each year's end
    received = {y: f["cases_received"] for y, f in figures.items()}
    assert [r.value for r in received.values() if isinstance(r, metrics.Count)] == [15, 90]  # 3 + 50 + 30 + 7
    total = figures[YEAR]["cases_received_cumulative"]
    assert isinstance(total, metrics.Count)
    assert total.value == 105  # 15 + 90: the sum of the years
    assert total.ids == tuple(sorted((world["e1"].id, world["e2"].id, world["e3"].id)))
    cumulative = "cases_received_cumulative"
    early = services.compute_metrics(session, 2024, datetime(2024, 12, 31, tzinfo=UTC))[cumulative]
    assert isinstance(early, metrics.Count)
    assert early.value == 15
    # As of 15 February 2025: 2024's 15, January's 3 records + 30, February's 50.
    mid = services.compute_metrics(session, YEAR, datetime(YEAR, 2, 15, tzinfo=CHINA_TZ))[cumulative]
    assert isinstance(mid, metrics.Count)
    assert mid.value == 98


@pytest.fixture
def admin_client(client: Any, session: Session) -> Any:
    return signed_in_admin(client, session, "fig_admin")


def test_dashboard_shows_cumulative_figures_beside_the_yearly_ones(
    admin_client: Any, session: Session
) -> None:
    world = build_world(session)
    backdate(session, datetime(YEAR, 3, 1, tzinfo=UTC))
    import_csv(session, csv_text([f"{world['e1'].task_code},2024-05,10,5,10,10"]), year=2024)
    import_csv(session, csv_text(case_rows(world)))
    html = admin_client.get(f"/admin/dashboard?year={YEAR}").get_data(as_text=True)
    assert '<div class="rp-card-label">办件总量</div>' in html
    assert 'data-key="cases_received_cumulative">累计' in html
    assert ">197</a>" in html  # 187 this year + 10 in 2024
    # 镇级: the town claims one 公共服务 item (e3), through one entry.
    assert 'data-key="entries_claimed_level_5">涉及实施清单' in html
    drill = admin_client.get(f"/admin/dashboard/metric/items_claimed_level_5?year={YEAR}")
    assert drill.status_code == 200
    assert "城乡居民养老保险参保登记" in drill.get_data(as_text=True)


def _freeze(session: Session, year: int) -> Snapshot:
    return snapshot.create_snapshot(session, SYSTEM, year, now=datetime(2026, 6, 1, tzinfo=UTC))


def test_two_snapshots_side_by_side_with_the_difference(session: Session) -> None:
    world = build_world(session)
    import_csv(session, csv_text(case_rows(world)))
    first = _freeze(session, YEAR)
    assert first.definitions_version == metrics.DEFINITIONS_VERSION
    import_csv(session, csv_text([f"{world['e1'].task_code},{YEAR}-04,13,13,13,12"]))
    second = _freeze(session, YEAR)
    result = snapshot_compare.compare(first.payload, second.payload)
    assert not result.versions_differ
    by_key = {f.key: f for f in result.figures}
    received = by_key["cases_received"]
    assert (received.a, received.b, received.difference, received.changed) == ("187", "200", "+13", True)
    on_time = by_key["on_time_rate"]  # 174/177 = 98.31 % → 186/190 = 97.89 %: −0.41 points
    assert on_time.a.startswith("98.3%（174/177")
    assert on_time.b.startswith("97.9%（186/190")
    assert on_time.difference == "-0.4 个百分点；分子 +12，分母 +13"
    assert not by_key["no_contact_rate"].changed
    months = next(t for t in result.tables if t.key == "cases_by_month")
    april = next(r for r in months.rows if r.label == "4月")
    assert april.cells[0] == ("—", "13", "")  # no April figure before, 13 after
    assert months.changed_cells == 4
    figures_changed = sum(f.changed for f in result.figures)
    assert result.changed == figures_changed + sum(t.changed_cells for t in result.tables)


def test_a_snapshot_keeps_its_definitions_version_and_compares_with_a_newer_one(session: Session) -> None:
    """A snapshot frozen under definitions 2.0 (licences_pushed then counted change events; no
    cumulative figures) keeps its version and its figures; the comparison says the versions differ,
    shows figures only one version has as absent, and never recomputes the old one."""
    world = build_world(session)
    backdate(session, datetime(YEAR, 3, 1, tzinfo=UTC))  # the catalogue existed during the year
    import_csv(session, csv_text(case_rows(world)))
    new = _freeze(session, YEAR)
    old_payload = copy.deepcopy(new.payload)
    old_payload["definitions_version"] = "2.0"
    del old_payload["metrics"]["cases_received_cumulative"]
    old_payload["metrics"]["items_claimed_level_5"]["value"] = 4
    old_payload["metrics"]["items_claimed_level_5"]["kind"] = "entry"
    old = Snapshot(year=YEAR, as_of=new.as_of, definitions_version="2.0", payload=old_payload,
                   hash=snapshot.payload_hash(old_payload), created_by="2.0 release")
    session.add(old)
    session.flush()
    assert snapshot.get_snapshot(session, old.id or 0).definitions_version == "2.0"
    result = snapshot_compare.compare(old.payload, new.payload)
    assert result.versions_differ
    by_key = {f.key: f for f in result.figures}
    cumulative = by_key["cases_received_cumulative"]
    assert (cumulative.a, cumulative.b, cumulative.difference) == (snapshot_compare.ABSENT, "187", "")
    assert (by_key["items_claimed_level_5"].a, by_key["items_claimed_level_5"].b) == ("4", "1")


def test_compare_page_for_administrators(admin_client: Any, app: Any, session: Session) -> None:
    world = build_world(session)
    import_csv(session, csv_text(case_rows(world)))
    first = _freeze(session, YEAR)
    import_csv(session, csv_text([f"{world['e2'].task_code},{YEAR}-05,4,4,4,4"]))
    second = _freeze(session, YEAR)
    home = admin_client.get("/admin/reports/").get_data(as_text=True)
    assert 'id="compare-form"' in home
    page = admin_client.get(f"/admin/reports/snapshots/compare?a={first.id}&b={second.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"#{first.id} · {YEAR} 年" in html
    assert f"指标定义版本 <strong>{metrics.DEFINITIONS_VERSION}</strong>" in html
    assert '<tr data-key="cases_received" class="changed"><td>办件总量</td><td>187</td><td>191</td>' in html
    assert 'id="cmp-versions"' not in html  # same version on both sides
    for query, status in (("a=x&b=1", 422), (f"a={first.id}", 422), (f"a={first.id}&b=999999", 404),
                          (f"a={first.id}&b=99999999999999999999", 422)):
        response = admin_client.get(f"/admin/reports/snapshots/compare?{query}")
        assert response.status_code == status, query
    anonymous = app.test_client().get(f"/admin/reports/snapshots/compare?a={first.id}&b={second.id}")
    assert anonymous.status_code == 401
