"""Every metric definition on one small dataset whose answers were worked out by hand (see comments).

Dataset (as of 2025-12-31, period 2025):
  departments D1, D2 (district, level 4), T1 (town 白马镇, level 5), V1 (village 大石村, level 6)
  items I1 许可 (4) · I2 确认 (4) · I3 公共服务 (4,5,6) · I4 其他权力 (5) · I5 处罚 (4) ·
        I6 给付 (4, county only) · I7 许可 (4,5, nobody answered)
  entries
    E1 I1 D1 01 published 不见面 visits 0 depth 1-6      -> Ⅳ, online, ≤1 visit
    E2 I2 D1 07 published         visits 1 depth 1,2     -> Ⅱ, online, ≤1 visit, drift
    E3 I3 D2 20 published         visits 2 no depth      -> none
    E4 I5 D2 02 published         visits 1               -> not 依申请, not in the six types
    E5 I6 D2 05 draft 不见面                               -> not published
    E6 I4 T1 10 published 不见面 visits 0 depth 4,5,7     -> Ⅳ
    E7 I3 V1 20 published         visits 0 depth 3       -> Ⅲ
    E8 I3 T1 20 declined (not applicable), draft
    E9 I1 D2 01 retired
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from reports import metrics as m

CN = timezone(timedelta(hours=8))
START = datetime(2025, 1, 1, tzinfo=CN)
END = datetime(2026, 1, 1, tzinfo=CN) - timedelta(microseconds=1)
TOWN, VILLAGE = "321203101000", "321203101201"


def entry(
    id_: int,
    item: int,
    dept: int,
    task_type: str,
    status: str = "published",
    *,
    level: str = "4",
    division: str = "321203000000",
    applicable: bool = True,
    visits: int = 1,
    depth: str = "",
    no_contact: bool = False,
    drift: bool = False,
) -> m.EntryFact:
    return m.EntryFact(
        id=id_,
        task_code=f"T{id_}",
        name=f"E{id_}",
        task_type=task_type,
        level=level,
        department_id=dept,
        division_code=division,
        item_id=item,
        status=status,
        applicable=applicable,
        visits=visits,
        online_depth=frozenset(depth.split(",")) if depth else frozenset(),
        no_contact=no_contact,
        drift=drift,
    )


def d(month: int, day: int = 1) -> datetime:
    return datetime(2025, month, day, tzinfo=CN)


PUSHES = [
    m.PushFact(11, 1, "sent", d(3).timestamp(), d(3).timestamp() + 30),
    m.PushFact(12, 1, "failed", d(6).timestamp()),
    m.PushFact(13, 2, "pending", d(2).timestamp()),
    m.PushFact(
        14,
        2,
        "sent",
        datetime(2024, 12, 1, tzinfo=CN).timestamp(),
        datetime(2026, 1, 5, tzinfo=UTC).timestamp(),
    ),
    m.PushFact(13, 2, "superseded", d(7).timestamp()),
]


@pytest.fixture
def facts() -> m.Facts:
    f = m.Facts(as_of=END, period_start=START, period_end=END)
    f.departments = [
        m.DepartmentFact(1, "区市场监管局", "4", "321203000000"),
        m.DepartmentFact(2, "区民政局", "4", "321203000000"),
        m.DepartmentFact(3, "白马镇人民政府", "5", TOWN),
        m.DepartmentFact(4, "大石村村民委员会", "6", VILLAGE),
    ]
    f.divisions = [
        m.DivisionFact(TOWN, "白马镇", "town", "321203000000"),
        m.DivisionFact(VILLAGE, "大石村", "village", TOWN),
    ]
    f.items = [
        m.ItemFact(1, "000101001000", "I1", "01", frozenset("4")),
        m.ItemFact(2, "000701001000", "I2", "07", frozenset("4")),
        m.ItemFact(3, "002001001000", "I3", "20", frozenset("456")),
        m.ItemFact(4, "001001001000", "I4", "10", frozenset("5")),
        m.ItemFact(5, "000201001000", "I5", "02", frozenset("4")),
        m.ItemFact(6, "000501001000", "I6", "05", frozenset("4"), county_only=True),
        m.ItemFact(7, "000101002000", "I7", "01", frozenset("45")),
    ]
    f.entries = [
        entry(1, 1, 1, "01", visits=0, depth="1,2,3,4,5,6", no_contact=True),
        entry(2, 2, 1, "07", visits=1, depth="1,2", drift=True),
        entry(3, 3, 2, "20", visits=2),
        entry(4, 5, 2, "02", visits=1),
        entry(5, 6, 2, "05", status="draft", visits=0, no_contact=True),
        entry(6, 4, 3, "10", level="5", division=TOWN, visits=0, depth="4,5,7", no_contact=True),
        entry(7, 3, 4, "20", level="6", division=VILLAGE, visits=0, depth="3"),
        entry(8, 3, 3, "20", status="draft", level="5", division=TOWN, applicable=False),
        entry(9, 1, 2, "01", status="retired"),
    ]
    f.cases, f.case_months = m.group_cases(
        [
            m.CaseFact(1, 1, 10, 8, 9, 9),
            m.CaseFact(1, 2, 5, 5, 5, 4),
            m.CaseFact(3, 1, 4, 0, 4, 3),
            m.CaseFact(6, 3, 2, 2, 0, 0),
        ]
    )
    f.bundles = [m.BundleFact(1, "开餐馆", (1, 2)), m.BundleFact(2, "新生儿", (3,))]
    f.licences = m.group_licences(
        [
            m.LicenceFact(11, "A", 1, issued_at=d(3).timestamp()),
            m.LicenceFact(12, "A", 1, amended_at=d(6).timestamp()),
            m.LicenceFact(13, "B", 2, issued_at=d(2).timestamp(), revoked_at=d(7).timestamp()),
            m.LicenceFact(14, "B", 2, issued_at=datetime(2024, 12, 1, tzinfo=CN).timestamp()),
        ],
        f,
    )
    f.pushes = m.group_pushes(PUSHES, f)
    f.acks = m.group_acks(PUSHES, f)
    # 证照目录 关联事项 "produces": E1 (D1) type A, E3 (D2) type B, E5 (D2, a draft) type B, E6 (T1) type C.
    f.producers = [
        m.ProducerFact("T1", "A"),
        m.ProducerFact("T3", "B"),
        m.ProducerFact("T5", "B"),
        m.ProducerFact("T6", "C"),
    ]
    f.cumulative_cases = [m.CaseFact(1, 0, 40, 0, 0, 0), m.CaseFact(3, 0, 4, 0, 0, 0)]
    f.sources = frozenset({"catalogue", "cases", "licences", "sync"})
    return f


def rate(r: m.Result) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    assert isinstance(r, m.Rate)
    return r.numerator, r.denominator, r.numerator_ids, r.denominator_ids


def rows(r: m.Result) -> dict[str, tuple[int | None, ...]]:
    assert isinstance(r, m.Table)
    return {row.code: row.values for row in r.rows}


def test_no_contact_rate_counts_published_entries_of_the_six_types(facts: m.Facts) -> None:
    # six types published: E1 (01), E2 (07), E6 (10); flagged: E1, E6. E5 is a draft, E4 a 处罚.
    assert rate(m.no_contact_rate(facts)) == (2, 3, (1, 6), (1, 2, 6))


def test_no_contact_rate_per_type_and_a_type_without_entries_is_missing(facts: m.Facts) -> None:
    assert rate(m.no_contact_rate(facts, "01"))[:2] == (1, 1)
    assert rate(m.no_contact_rate(facts, "07"))[:2] == (0, 1)
    assert rate(m.no_contact_rate(facts, "10"))[:2] == (1, 1)
    given = m.no_contact_rate(facts, "05")  # only E5, a draft
    assert given.denominator == 0
    assert given.missing
    assert given.value is None


def test_full_online_rate_needs_depth_four_and_zero_visits(facts: m.Facts) -> None:
    # 依申请 published: E1 E2 E3 E6 E7; Ⅳ: E1 (4,5 + 6, 0 visits), E6 (4,5 + 7, 0 visits).
    assert rate(m.full_online_rate(facts)) == (2, 5, (1, 6), (1, 2, 3, 6, 7))


def test_at_most_once_rate(facts: m.Facts) -> None:
    assert rate(m.at_most_once_rate(facts))[:3] == (4, 5, (1, 2, 6, 7))  # E3 needs 2 visits


def test_online_available_rate(facts: m.Facts) -> None:
    assert rate(m.online_available_rate(facts))[:3] == (4, 5, (1, 2, 6, 7))  # E3 has no depth


def test_depth_distribution(facts: m.Facts) -> None:
    assert rows(m.depth_distribution(facts)) == {"4": (2,), "3": (1,), "2": (1,), "1": (0,), "0": (1,)}


def test_depth_level_mapping() -> None:
    assert m.depth_level(frozenset({"4", "5", "6"}), 0) == 4
    assert m.depth_level(frozenset({"4", "5", "6"}), 1) == 3  # a visit keeps it below Ⅳ
    assert m.depth_level(frozenset({"4"}), 0) == 3  # no result delivery online
    assert m.depth_level(frozenset({"2"}), 0) == 2
    assert m.depth_level(frozenset({"1"}), 0) == 1
    assert m.depth_level(frozenset(), 0) == 0


def test_entries_by_department_excludes_retired_and_counts_drafts_as_claimed(facts: m.Facts) -> None:
    table = m.entries_by_department(facts)
    # D1: E1, E2 -> 2 claimed, 2 published, 1 不见面. D2: E3 E4 E5 (E9 retired) -> 3, 0, 2, 0.
    assert rows(table) == {"1": (2, 0, 2, 1), "2": (3, 0, 2, 0)}
    assert {r.code: r.ids for r in table.rows}["2"] == (3, 4, 5)


def test_entries_by_town_and_village(facts: m.Facts) -> None:
    assert rows(m.entries_by_town(facts)) == {TOWN: (1, 1, 1, 1)}  # E6 claimed, E8 declined
    assert rows(m.entries_by_village(facts)) == {VILLAGE: (1, 0, 1, 0)}  # E7


def test_items_claimed_per_level_count_distinct_public_service_items(facts: m.Facts) -> None:
    # Level 5: E6 is a 其他行政权力 item, E8 a decline: no 公共服务 item. Level 6: E7 claims I3.
    assert (m.level_items_claimed(facts, "5").value, m.level_entries_claimed(facts, "5").value) == (0, 0)
    village = m.level_items_claimed(facts, "6")
    assert (village.value, village.ids, village.kind) == (1, (3,), "item")
    assert m.level_entries_claimed(facts, "6").ids == (7,)
    facts.departments += [
        m.DepartmentFact(5, "胡庄镇人民政府", "5", "321203103000"),
        m.DepartmentFact(6, "引江社区居民委员会", "6", "321203001001"),
    ]
    facts.entries += [
        entry(10, 3, 5, "20", level="5", division="321203103000"),  # a second town claims I3
        entry(11, 4, 5, "10", level="5", division="321203103000"),  # not 公共服务
        # The entry's own type says 公共服务 but its basic item I4 is 其他行政权力: the item decides.
        entry(12, 4, 3, "20", level="5", division=TOWN, drift=True),
        entry(13, 3, 6, "20", level="6", division="321203001001", status="draft"),  # claimed, unpublished
        entry(14, 3, 6, "20", level="6", division="321203001001", status="retired"),
    ]
    town, town_entries = m.level_items_claimed(facts, "5"), m.level_entries_claimed(facts, "5")
    assert (town.value, town.ids, town_entries.value, town_entries.ids) == (1, (3,), 1, (10,))
    village, village_entries = m.level_items_claimed(facts, "6"), m.level_entries_claimed(facts, "6")
    # I3 claimed by two villages (E7, E13): one item, two entries; E14 is retired.
    assert (village.value, village.ids, village_entries.value, village_entries.ids) == (1, (3,), 2, (7, 13))


def test_claim_coverage_per_level(facts: m.Facts) -> None:
    # Level 4: items with 4: I1 I2 I3 I5 I6 I7 = 6; answered by live level-4 entries: I1 I2 I3 I5 I6.
    assert rate(m.claim_coverage(facts, "4"))[:2] == (5, 6)
    # Level 5: T1 × {I3, I4, I7} = 3 pairs; answered: I4 (claim), I3 (decline).
    r5 = m.claim_coverage(facts, "5")
    assert rate(r5)[:2] == (2, 3)
    assert r5.denominator_ids == (7,)  # the item still unanswered
    # Level 6: V1 × {I3} = 1 pair, answered by E7.
    assert rate(m.claim_coverage(facts, "6"))[:2] == (1, 1)


def test_drift_rate_over_live_entries(facts: m.Facts) -> None:
    assert rate(m.drift_count(facts))[:3] == (1, 8, (2,))


def test_case_statistics(facts: m.Facts) -> None:
    total = m.cases_received(facts)
    assert (total.value, total.ids) == (21, (1, 3, 6))
    assert rate(m.online_case_share(facts))[:2] == (15, 21)
    assert rate(m.on_time_rate(facts))[:2] == (16, 18)
    # Departments with cases: D1 (E1), D2 (E3), T1 (E6); with online cases: D1, T1.
    assert rate(m.departments_online(facts)) == (2, 3, (1, 3), (1, 2, 3))


def test_cases_by_month_marks_months_without_data(facts: m.Facts) -> None:
    table = rows(m.cases_by_month(facts))
    assert table["01"] == (14, 8, 13, 12)
    assert table["02"] == (5, 5, 5, 4)
    assert table["03"] == (2, 2, 0, 0)
    assert table["04"] == (None, None, None, None)


def test_cases_by_department_sorted_by_received(facts: m.Facts) -> None:
    table = m.cases_by_department(facts)
    assert [(r.code, r.values) for r in table.rows] == [
        ("1", (15, 13, 14, 13)),
        ("2", (4, 0, 4, 3)),
        ("3", (2, 2, 0, 0)),
    ]


def test_no_case_data_is_missing_not_zero(facts: m.Facts) -> None:
    facts.cases, facts.case_months = [], []
    assert m.cases_received(facts).missing
    assert m.online_case_share(facts).value is None
    assert m.cases_by_month(facts).missing


def test_bundles_published(facts: m.Facts) -> None:
    result = m.bundles_published(facts)
    assert (result.value, result.ids) == (2, (1, 2))


def test_licence_events_in_period(facts: m.Facts) -> None:
    # A: L11 issued, L12 amended. B: L13 issued and revoked; L14 was issued in 2024.
    table = m.licence_events(facts)
    assert rows(table) == {"A": (1, 1, 0), "B": (1, 0, 1)}
    assert {r.code: r.ids for r in table.rows} == {"A": (1,), "B": (2,)}  # the issuing departments
    assert m.licence_types_in_use(facts).value == 2


def test_licences_issued_in_the_year_and_cumulative(facts: m.Facts) -> None:
    # First versions: L11 (A, D1, March), L13 (B, D2, February), L14 (B, D2, December 2024); L12 is
    # an amendment (a new version, not a new licence).
    issued, total = m.licences_issued(facts), m.licences_issued_cumulative(facts)
    assert (issued.value, issued.ids) == (2, (1, 2))
    assert (total.value, total.ids) == (3, (1, 2))


def test_pushed_counts_licence_versions_acknowledged_by_the_as_of_date(facts: m.Facts) -> None:
    # Only L11's record was acknowledged by 31 Dec (March); L14's came in January 2026.
    assert facts.acks == [m.AckGroup(1, 3, 1, 1)]
    for figure in (m.licences_pushed, m.licences_pushed_cumulative, m.sync_events_sent,
                   m.sync_events_sent_cumulative):
        result = figure(facts)
        assert (result.value, result.ids) == (1, (1,)), result.key


def test_change_events_are_counted_apart_from_licence_versions(facts: m.Facts) -> None:
    """L11 is suspended (April) and resumed (May): still one licence record, three change events.
    L15 (D2) was first acknowledged in November 2024 and suspended in August: cumulative only as a
    record, but its August event is this year's. L16's acknowledgement after the as-of date does not count.
    """
    cn = d(1).tzinfo
    pushes = [
        *PUSHES,
        m.PushFact(11, 1, "sent", d(4).timestamp(), d(4).timestamp() + 10),
        m.PushFact(11, 1, "sent", d(5).timestamp(), d(5).timestamp() + 10),
        m.PushFact(15, 2, "sent", datetime(2024, 11, 1, tzinfo=cn).timestamp(),
                   datetime(2024, 11, 1, 0, 5, tzinfo=cn).timestamp()),
        m.PushFact(15, 2, "sent", d(8).timestamp(), d(8).timestamp() + 60),
        m.PushFact(16, 2, "sent", d(12, 31).timestamp(), datetime(2026, 1, 2, tzinfo=cn).timestamp()),
    ]
    facts.acks = m.group_acks(pushes, facts)
    assert facts.acks == [
        m.AckGroup(1, 3, 1, 1), m.AckGroup(1, 4, 0, 1), m.AckGroup(1, 5, 0, 1),
        m.AckGroup(2, 0, 1, 1), m.AckGroup(2, 8, 0, 1),
    ]
    assert (m.licences_pushed(facts).value, m.licences_pushed(facts).ids) == (1, (1,))
    assert (m.licences_pushed_cumulative(facts).value, m.licences_pushed_cumulative(facts).ids) == (2, (1, 2))
    assert (m.sync_events_sent(facts).value, m.sync_events_sent(facts).ids) == (4, (1, 2))
    assert m.sync_events_sent_cumulative(facts).value == 5


def test_licence_department_coverage_is_over_departments_that_produce_licences(facts: m.Facts) -> None:
    # Producing published entries: E1 (D1), E3 (D2), E6 (T1); E5 (D2) is a draft. Acknowledged: D1 only.
    assert rate(m.licence_department_coverage(facts)) == (1, 3, (1,), (1, 2, 3))
    table = m.licence_coverage_by_department(facts)
    assert rows(table) == {"1": (1, 1, 1), "2": (1, 1, 0), "3": (1, 1, 0)}
    assert {r.code: r.ids for r in table.rows} == {"1": (1,), "2": (3,), "3": (6,)}
    # The village V1 pushes a licence but none of its entries produces one: listed, not in the rate.
    facts.acks = [*facts.acks, m.AckGroup(4, 6, 2, 2)]
    assert rate(m.licence_department_coverage(facts))[:2] == (1, 3)
    assert rows(m.licence_coverage_by_department(facts))["4"] == (0, 0, 2)


def test_licence_department_coverage_without_producing_entries_is_missing(facts: m.Facts) -> None:
    facts.producers = []
    coverage = m.licence_department_coverage(facts)
    assert coverage.missing
    assert "关联" in coverage.missing
    facts.producers = [m.ProducerFact("T5", "B")]  # only a draft produces
    assert m.licence_department_coverage(facts).missing == "没有已发布的产生证照的实施清单事项"


def test_cases_received_cumulative(facts: m.Facts) -> None:
    total = m.cases_received_cumulative(facts)
    assert (total.value, total.ids) == (44, (1, 3))
    facts.cumulative_cases = []
    assert m.cases_received_cumulative(facts).missing


def test_push_failures_and_lag(facts: m.Facts) -> None:
    failures = m.push_failures(facts)
    assert (failures.value, failures.ids) == (1, (1,))  # L12, issued by D1
    lag = rows(m.push_lag(facts))
    assert lag["≤1分钟"] == (1,)
    assert lag["待推送"] == (2,)  # L13 pending, L14 delivered only after the as-of date
    assert lag[">1天"] == (0,)


def test_sync_by_month(facts: m.Facts) -> None:
    table = rows(m.sync_by_month(facts))
    assert table["02"] == (0, 1, 0, 0)
    assert table["03"] == (1, 0, 0, 0)
    assert table["06"] == (0, 0, 1, 0)
    assert table["07"] == (0, 0, 0, 1)  # superseded
    assert table["12"] == (0, 0, 0, 0)  # L14's record was created in 2024


def test_push_groups_bucket_state_month_and_lag(facts: m.Facts) -> None:
    assert (1, "sent", 3, 0, 1) in facts.pushes  # L11: March, delivered within a minute
    assert (2, "pending", 0, -1, 1) in facts.pushes  # L14: created before the period, sent after it


def test_every_definition_is_computed_and_serialisable(facts: m.Facts) -> None:
    results = m.compute_all(facts)
    assert set(results) == {d.key for d in m.DEFINITIONS}
    for key, result in results.items():
        data = result.as_dict()
        assert data["key"] == key
        assert data["label"]


def test_empty_facts_report_missing_rather_than_zero() -> None:
    empty = m.Facts(as_of=END, period_start=START, period_end=END)
    results = m.compute_all(empty)
    for key in (
        "no_contact_rate",
        "full_online_rate",
        "cases_received",
        "licences_pushed",
        "licences_pushed_cumulative",
        "sync_events_sent",
        "licences_issued",
        "licence_department_coverage",
        "licence_coverage_by_department",
        "cases_received_cumulative",
        "entries_by_town",
        "items_claimed_level_5",
        "entries_claimed_level_6",
    ):
        assert results[key].missing, key


def test_drift_rate_leaves_out_entries_with_no_upper_item_to_compare(facts: m.Facts) -> None:
    unchecked = dataclasses.replace(facts, entries=[e._replace(drift_checkable=False) for e in facts.entries])
    result = m.drift_count(unchecked)
    assert (result.numerator, result.denominator) == (0, 0)
    assert result.missing
    assert "上级基本目录" in result.missing


def test_rates_over_entries_give_their_reporting_rate(facts: m.Facts) -> None:
    """填报率 beside the rate: entries whose visits are not recorded are left out of both sides and
    counted apart (hand-worked on the fixture: one more entry in scope with nothing recorded)."""
    base = m.at_most_once_rate(facts)
    blank = facts.entries[0]._replace(id=999, task_code="T999", visits=None, online_depth=frozenset())
    more = dataclasses.replace(facts, entries=[*facts.entries, blank])
    rate = m.at_most_once_rate(more)
    assert (rate.numerator, rate.denominator) == (base.numerator, base.denominator)
    assert rate.not_recorded == (base.not_recorded or 0) + 1
    assert rate.reporting_rate == rate.denominator / (rate.denominator + rate.not_recorded)
    assert rate.as_dict()["not_recorded"] == rate.not_recorded
    online_before = m.online_available_rate(facts).not_recorded or 0
    assert m.online_available_rate(more).not_recorded == online_before + 1
