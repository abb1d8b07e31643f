"""Report use cases: load facts as of a date, import case statistics, template tables (bundles:
reports.bundles).

Services take a Session, flush and never commit. ``reports`` only reads catalogue and licence
tables; the tables it writes are its own (reports.models).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.consistency import drift_sql
from catalog.models import (
    CatalogItem,
    Department,
    Division,
    EntryVersion,
    ImplementationEntry,
    UpperCatalogItem,
)
from core.audit import record
from core.auth import Principal
from core.csv_input import header_problems, table_rows, text_records
from core.errors import Forbidden, Invalid, field_error
from core.types import CHINA_TZ, utcnow
from licenses.models import ENDED_STATUSES
from reports import metrics
from reports.models import Bundle, BundleEntry, CaseRecord, CaseStat, TemplateTable

MIN_YEAR, MAX_YEAR = 2000, 2100


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The statistical year in China time: 1 Jan 00:00 to 31 Dec 23:59:59.999999 (UTC+8)."""
    check_year(year)
    start = datetime(year, 1, 1, tzinfo=CHINA_TZ)
    return start, datetime(year + 1, 1, 1, tzinfo=CHINA_TZ) - timedelta(microseconds=1)


def check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise field_error("year", f"年份应在 {MIN_YEAR}–{MAX_YEAR} 之间")


def default_as_of(year: int) -> datetime:
    """Year end for a past year, now for the current year."""
    _start, end = year_bounds(year)
    return min(end, utcnow())


# ---- facts ------------------------------------------------------------------------------------------


def _depth(value: Any) -> frozenset[str]:
    if not value:
        return frozenset()
    if isinstance(value, list | tuple):
        return frozenset(str(v) for v in value)
    return frozenset(p.strip() for p in str(value).split(",") if p.strip())


def _saved(snapshot: Any) -> dict[str, Any]:
    if isinstance(snapshot, str):
        snapshot = json.loads(snapshot)
    if not isinstance(snapshot, dict):
        return {}
    inner = snapshot.get("entry")
    return inner if isinstance(inner, dict) else snapshot


_DEPTH_CACHE: dict[str, frozenset[str]] = {}


def _depth_codes(value: Any) -> frozenset[str]:
    key = value if isinstance(value, str) else ",".join(map(str, value or ()))
    found = _DEPTH_CACHE.get(key)
    if found is None:
        found = _depth(key)
        if len(_DEPTH_CACHE) < 4096:  # distinct depth strings are few; bound the cache anyway
            _DEPTH_CACHE[key] = found
    return found


def load_catalogue_facts(session: Session, as_of: datetime) -> dict[str, Any]:
    """Items, bodies, divisions and entries as they stood at ``as_of``.

    An entry's status and elements are those of its latest version (EntryVersion) saved by then;
    an entry without versions falls back to its row. Drift compares with the item's current values.
    """
    item_rows = session.execute(
        sa.select(
            col(CatalogItem.id),
            col(CatalogItem.code),
            col(CatalogItem.name),
            col(CatalogItem.task_type),
            col(CatalogItem.use_levels),
            col(CatalogItem.county_only),
        ).where(col(CatalogItem.created_at) <= as_of)
    ).all()
    E, It, V, Up = ImplementationEntry, CatalogItem, EntryVersion, UpperCatalogItem
    latest = (
        select(col(V.entry_id), sa.func.max(col(V.id)).label("vid"))
        .where(col(V.created_at) <= as_of)
        .group_by(col(V.entry_id))
        .subquery()
    )
    # The one 三级四同 rule, as the consistency report applies it: against the upper-level item.
    drift = drift_sql(E, Up)
    stmt = (
        sa.select(
            col(E.id),
            col(E.task_code),
            col(E.name),
            col(E.task_type),
            col(E.level),
            col(E.department_id),
            col(E.division_code),
            col(E.item_id),
            col(E.status),
            col(E.applicable),
            col(E.visits),
            col(E.online_depth),
            col(E.no_contact),
            sa.and_(col(E.published_at).is_not(None), col(E.published_at) > as_of),
            drift,
            col(Up.id).is_not(None),
            col(V.status),
            sa.cast(col(V.snapshot), sa.Text),
        )
        .join(It, col(It.id) == E.item_id)
        .outerjoin(Up, col(Up.id) == It.upper_item_id)
        .outerjoin(latest, latest.c.entry_id == E.id)
        .outerjoin(V, col(V.id) == latest.c.vid)
        .where(col(E.created_at) <= as_of)
    )
    entries: list[metrics.EntryFact] = []
    for (
        eid,
        task_code,
        name,
        task_type,
        level,
        dept,
        division,
        item_id,
        status,
        applicable,
        visits,
        depth,
        no_contact,
        published_later,
        drifted,
        checkable,
        saved_status,
        snapshot,
    ) in _fetch(session, stmt):
        if saved_status is not None:
            status = saved_status
            saved = _saved(snapshot)
            applicable = saved.get("applicable", applicable)
            visits = saved.get("visits", visits)
            depth = saved.get("online_depth", depth)
            no_contact = saved.get("no_contact", no_contact)
        elif status == metrics.PUBLISHED and published_later:
            status = "submitted"
        entries.append(
            metrics.EntryFact(
                eid,
                task_code,
                name,
                task_type,
                level,
                dept,
                division,
                item_id,
                status,
                bool(applicable),
                int(visits) if visits is not None else None,
                _depth_codes(depth),
                bool(no_contact),
                bool(drifted),
                bool(checkable),
            )
        )
    items = {r.id: r for r in item_rows}
    departments = [
        metrics.DepartmentFact(r.id, r.name, r.level, r.division_code)
        for r in session.execute(
            select(
                col(Department.id), col(Department.name), col(Department.level), col(Department.division_code)
            ).where(col(Department.created_at) <= as_of)
        ).all()
    ]
    divisions = [
        metrics.DivisionFact(r.code, r.name, r.level, r.parent_code)
        for r in session.execute(
            select(
                col(Division.code), col(Division.name), col(Division.level), col(Division.parent_code)
            ).where(col(Division.level).in_(("town", "village")))
        ).all()
    ]
    return {
        "entries": entries,
        "items": [
            metrics.ItemFact(
                i.id,
                i.code,
                i.name,
                i.task_type,
                frozenset(p.strip() for p in (i.use_levels or "").split(",") if p.strip()),
                bool(i.county_only),
            )
            for i in items.values()
        ],
        "departments": departments,
        "divisions": divisions,
    }


def _case_cells(
    session: Session, year: int, as_of: datetime
) -> tuple[dict[tuple[int, int], list[int]], dict[tuple[int, int], list[int]]]:
    """Case counts per (entry, month) of ``year`` up to ``as_of``: from the case records, and from the
    imported monthly aggregates for the (entry, month) cells no case record covers.

    Counts are [received 收件 (accepted in the month), online (of those, applied online), finished 办结
    (result in the month), on_time (of those, within the deadline, special procedures excluded)].
    """
    last_month = 12
    local = as_of.astimezone(CHINA_TZ)
    if local.year == year:
        last_month = local.month
    elif local.year < year:
        return {}, {}
    first_day = date(year, 1, 1)
    last_day = min(date(year, 12, 31), local.date())
    C = CaseRecord
    records: dict[tuple[int, int], list[int]] = {}
    accepted_month = sa.extract("month", col(C.accept_date))
    for entry_id, month, received, online in session.execute(
        sa.select(
            col(C.entry_id),
            accepted_month,
            sa.func.count(),
            sa.func.count().filter(col(C.channel) == "online"),
        )
        .where(col(C.accept_date).between(first_day, last_day))
        .group_by(col(C.entry_id), accepted_month)
    ).all():
        records[(entry_id, int(month))] = [received, online, 0, 0]
    result_month = sa.extract("month", col(C.result_date))
    for entry_id, month, finished, on_time in session.execute(
        sa.select(
            col(C.entry_id),
            result_month,
            sa.func.count(),
            sa.func.count().filter(col(C.on_time).is_(True)),
        )
        .where(col(C.result_date).between(first_day, last_day))
        .group_by(col(C.entry_id), result_month)
    ).all():
        cell = records.setdefault((entry_id, int(month)), [0, 0, 0, 0])
        cell[2], cell[3] = finished, on_time
    aggregates: dict[tuple[int, int], list[int]] = {}
    for entry_id, month, *counts in session.execute(
        sa.select(
            col(CaseStat.entry_id),
            col(CaseStat.month),
            col(CaseStat.received),
            col(CaseStat.online),
            col(CaseStat.finished),
            col(CaseStat.on_time),
        ).where(col(CaseStat.year) == year, col(CaseStat.month) <= last_month)
    ).all():
        if (entry_id, month) not in records:
            aggregates[(entry_id, month)] = list(counts)
    return records, aggregates


# The same cells as _case_cells, grouped in SQL on PostgreSQL (a year of 1M cases and 120k aggregate
# rows would otherwise travel to Python); a test checks both paths against each other.
CASE_CELLS_CTE = """
WITH rec AS (
  SELECT entry_id, month, sum(received) AS received, sum(online) AS online,
         sum(finished) AS finished, sum(on_time) AS on_time
  FROM (
    SELECT entry_id, extract(month FROM accept_date)::int AS month, count(*) AS received,
           count(*) FILTER (WHERE channel = 'online') AS online, 0 AS finished, 0 AS on_time
    FROM report_case WHERE accept_date BETWEEN :lo AND :hi GROUP BY 1, 2
    UNION ALL
    SELECT entry_id, extract(month FROM result_date)::int, 0, 0, count(*),
           count(*) FILTER (WHERE on_time)
    FROM report_case WHERE result_date BETWEEN :lo AND :hi GROUP BY 1, 2
  ) AS x
  GROUP BY entry_id, month
), agg AS (
  SELECT s.entry_id, s.month, s.received, s.online, s.finished, s.on_time
  FROM report_case_stat s
  WHERE s.year = :year AND s.month <= :last_month
    AND NOT EXISTS (SELECT 1 FROM rec WHERE rec.entry_id = s.entry_id AND rec.month = s.month)
), cells AS (
  SELECT 'record' AS source, rec.* FROM rec UNION ALL SELECT 'aggregate', agg.* FROM agg
)
"""


_CELL_SUMS = "sum(received)::int, sum(online)::int, sum(finished)::int, sum(on_time)::int"
CASES_PER_ENTRY_SQL = sa.text(
    CASE_CELLS_CTE  # noqa: S608 (module constants only, no input)
    + "SELECT entry_id, " + _CELL_SUMS + " FROM cells GROUP BY entry_id ORDER BY entry_id"
)
CASES_PER_MONTH_SQL = sa.text(
    CASE_CELLS_CTE
    + "SELECT month, " + _CELL_SUMS + ", array_agg(DISTINCT entry_id) "
    "FROM cells GROUP BY month ORDER BY month"
)
CASE_SOURCES_SQL = sa.text(
    CASE_CELLS_CTE  # noqa: S608 (module constants only, no input)
    + "SELECT count(*) FILTER (WHERE source = 'record'), "
    "count(*) FILTER (WHERE source = 'aggregate'), "
    "array_agg(DISTINCT month) FILTER (WHERE source = 'aggregate') FROM cells"
)


def _case_cell_params(year: int, as_of: datetime) -> dict[str, Any] | None:
    local = as_of.astimezone(CHINA_TZ)
    if local.year < year:
        return None
    return {
        "year": year,
        "last_month": local.month if local.year == year else 12,
        "lo": date(year, 1, 1),
        "hi": min(date(year, 12, 31), local.date()),
    }


def load_case_facts(
    session: Session, year: int, as_of: datetime
) -> tuple[list[metrics.CaseFact], list[metrics.CaseMonth]]:
    """Case statistics of ``year`` up to the as-of date: per-entry sums and per-month totals.

    They come from the case records (办件); an (entry, month) without any case record takes the
    imported monthly aggregate, which stays for the years before case-level intake (see _case_cells).
    """
    if session.connection().dialect.name != "postgresql":
        records, aggregates = _case_cells(session, year, as_of)
        return metrics.group_cases(
            metrics.CaseFact(entry_id, month, *counts)
            for (entry_id, month), counts in sorted({**aggregates, **records}.items())
        )
    params = _case_cell_params(year, as_of)
    if params is None:
        return [], []
    per_entry = [
        metrics.CaseFact(e, 0, *v) for e, *v in session.execute(CASES_PER_ENTRY_SQL, params).all()
    ]
    per_month = [
        metrics.CaseMonth(m, v[0], v[1], v[2], v[3], tuple(sorted(v[4])))
        for m, *v in session.execute(CASES_PER_MONTH_SQL, params).all()
    ]
    return per_entry, per_month


def load_cumulative_cases(session: Session, as_of: datetime) -> list[metrics.CaseFact]:
    """Cases received per entry in every year up to the as-of date (the 累计 figure), by the same rule
    as a year's: an (entry, year, month) with case records counts its records (by acceptance date),
    one without takes the imported monthly aggregate. The sum of the years' ``cases_received`` equals it.
    The records are grouped in SQL (a year of 1M
    cases becomes ~36k cells), the cells combined here."""
    local = as_of.astimezone(CHINA_TZ)
    C = CaseRecord
    year, month = sa.extract("year", col(C.accept_date)), sa.extract("month", col(C.accept_date))
    cells: dict[tuple[int, int, int], int] = {
        (entry_id, int(y), int(m)): received
        for entry_id, y, m, received in session.execute(
            sa.select(col(C.entry_id), year, month, sa.func.count())
            .where(col(C.accept_date) <= local.date())
            .group_by(col(C.entry_id), year, month)
        ).all()
    }
    # A month in which only results of earlier cases fall is covered by records too (received 0 there),
    # as in a year's figures: its aggregate is not used.
    r_year, r_month = sa.extract("year", col(C.result_date)), sa.extract("month", col(C.result_date))
    for entry_id, y, m in session.execute(
        sa.select(col(C.entry_id), r_year, r_month)
        .where(col(C.result_date) <= local.date())
        .group_by(col(C.entry_id), r_year, r_month)
    ).all():
        cells.setdefault((entry_id, int(y), int(m)), 0)
    S = CaseStat
    for entry_id, y, m, received in session.execute(
        sa.select(col(S.entry_id), col(S.year), col(S.month), col(S.received)).where(
            sa.or_(col(S.year) < local.year, sa.and_(col(S.year) == local.year, col(S.month) <= local.month))
        )
    ).all():
        cells.setdefault((entry_id, y, m), received)
    per_entry: dict[int, int] = defaultdict(int)
    for (entry_id, _y, _m), received in cells.items():
        per_entry[entry_id] += received
    return [metrics.CaseFact(e, 0, n, 0, 0, 0) for e, n in sorted(per_entry.items())]


@dataclass(frozen=True)
class CaseSources:
    """Where a year's case figures come from: (entry, month) cells of case records and of imported
    monthly aggregates, for the dashboard's label."""

    record_cells: int
    aggregate_cells: int
    aggregate_months: tuple[int, ...]


def case_sources(session: Session, year: int, as_of: datetime) -> CaseSources:
    if session.connection().dialect.name != "postgresql":
        records, aggregates = _case_cells(session, year, as_of)
        return CaseSources(len(records), len(aggregates), tuple(sorted({m for _e, m in aggregates})))
    params = _case_cell_params(year, as_of)
    if params is None:
        return CaseSources(0, 0, ())
    records, aggregates, months = session.execute(CASE_SOURCES_SQL, params).one()
    return CaseSources(int(records), int(aggregates), tuple(sorted(months or ())))


def load_bundle_facts(session: Session, as_of: datetime) -> list[metrics.BundleFact]:
    bundles = session.execute(
        select(col(Bundle.id), col(Bundle.name)).where(
            col(Bundle.published), col(Bundle.published_at) <= as_of
        )
    ).all()
    members: dict[int, list[int]] = {}
    for bundle_id, entry_id in session.execute(
        select(col(BundleEntry.bundle_id), col(BundleEntry.entry_id)).order_by(
            col(BundleEntry.position), col(BundleEntry.id)
        )
    ).all():
        members.setdefault(bundle_id, []).append(entry_id)
    return [metrics.BundleFact(b.id, b.name, tuple(members.get(b.id, []))) for b in bundles]


def _fetch(session: Session, stmt: Any) -> list[tuple[Any, ...]]:
    """Plain tuples; on PostgreSQL straight from the driver cursor (140k rows without Row objects)."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return [tuple(r) for r in conn.execute(stmt).all()]
    compiled = stmt.compile(dialect=conn.dialect)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), compiled.params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


# Licences that ended (注销/吊销/撤销/作废, licenses.models.ENDED_STATUSES; a test checks the list
# below against it) count as "revoked" in the reports.
LICENCE_GROUPS_SQL = sa.text("""
SELECT type_code, issuer_department_id, count(*) AS existing,
       count(*) FILTER (WHERE previous_id IS NULL
             AND (issue_date::timestamp - interval '8 hours') AT TIME ZONE 'UTC'
                 BETWEEN :lo AND :hi) AS issued,
       count(*) FILTER (WHERE previous_id IS NOT NULL AND created_at BETWEEN :lo AND :hi) AS amended,
       count(*) FILTER (WHERE status IN ('cancelled', 'revoked', 'withdrawn', 'void')
                        AND status_changed_at BETWEEN :lo AND :hi) AS revoked,
       count(*) FILTER (WHERE previous_id IS NULL) AS first_versions
FROM licence WHERE created_at <= :as_of
GROUP BY type_code, issuer_department_id
""")
PUSH_GROUPS_SQL = sa.text("""
SELECT department_id, state, month, CASE WHEN state <> 'sent' THEN -1
            WHEN lag <= 60 THEN 0 WHEN lag <= 3600 THEN 1 WHEN lag <= 86400 THEN 2 ELSE 3 END AS band,
       count(*) AS n
FROM (
  SELECT l.issuer_department_id AS department_id,
         CASE WHEN o.status = 'sent' THEN
                CASE WHEN o.synced_at IS NOT NULL AND o.synced_at <= :as_of THEN 'sent' ELSE 'pending' END
              WHEN o.status IN ('pending', 'failed') THEN o.status ELSE 'other' END AS state,
         CASE WHEN o.created_at BETWEEN :lo AND :hi
              THEN extract(month FROM (o.created_at AT TIME ZONE 'UTC') + interval '8 hours')::int ELSE 0 END
           AS month,
         extract(epoch FROM o.synced_at - o.created_at) AS lag
  FROM licence_outbox o JOIN licence l ON l.id = o.licence_id
  WHERE o.created_at <= :as_of
) AS p
GROUP BY department_id, state, month, band
""")

# metrics.group_acks in SQL: records the registry acknowledged by the as-of moment, by the issuing
# department and the China-time month of acknowledgement (0 before the period, 13 after it); a licence
# version counts once, in the month of its first acknowledged record.
ACK_GROUPS_SQL = sa.text("""
SELECT department_id, month, count(*) FILTER (WHERE first_ack) AS versions, count(*) AS events
FROM (
  SELECT l.issuer_department_id AS department_id,
         CASE WHEN o.synced_at < :lo THEN 0 WHEN o.synced_at > :period_end THEN 13
              ELSE extract(month FROM (o.synced_at AT TIME ZONE 'UTC') + interval '8 hours')::int
         END AS month,
         row_number() OVER (PARTITION BY o.licence_id ORDER BY o.synced_at, o.created_at) = 1 AS first_ack
  FROM licence_outbox o JOIN licence l ON l.id = o.licence_id
  WHERE o.status = 'sent' AND o.synced_at IS NOT NULL AND o.synced_at <= :as_of
    AND o.created_at <= :as_of
) AS a
GROUP BY department_id, month
""")


def load_producers(session: Session) -> list[metrics.ProducerFact]:
    """证照目录 关联事项 with the role "produces" (the links as they are now: they keep no history)."""
    from licenses.models import LicenceType, LicenceTypeEntry

    return [
        metrics.ProducerFact(task_code, type_code)
        for task_code, type_code in session.execute(
            sa.select(col(LicenceTypeEntry.task_code), col(LicenceType.code))
            .join(LicenceType, col(LicenceType.id) == LicenceTypeEntry.licence_type_id)
            .where(col(LicenceTypeEntry.role) == "produces")
            .order_by(col(LicenceTypeEntry.task_code), col(LicenceType.code))
        ).all()
    ]


def _seconds(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


def load_licence_rows(
    session: Session, as_of: datetime
) -> tuple[list[metrics.LicenceFact], list[metrics.PushFact]]:
    """Row-level licence and outbox facts (the embedded SQLite mode, and the tests' oracle)."""
    from licenses.models import Licence, LicenceOutbox

    cut = as_of.timestamp()
    licences: list[metrics.LicenceFact] = []
    for lid, type_code, dept, previous, status, changed, created, issued in session.execute(
        sa.select(
            col(Licence.id),
            col(Licence.type_code),
            col(Licence.issuer_department_id),
            col(Licence.previous_id),
            col(Licence.status),
            col(Licence.status_changed_at),
            col(Licence.created_at),
            col(Licence.issue_date),
        ).where(col(Licence.created_at) <= as_of)
    ).all():
        changed_s = _seconds(changed)
        ended = status in ENDED_STATUSES
        revoked = changed_s if ended and changed_s is not None and changed_s <= cut else None
        if previous:
            licences.append(metrics.LicenceFact(lid, type_code, dept, None, _seconds(created), revoked))
        else:
            issued_s = datetime.combine(issued, datetime.min.time(), CHINA_TZ).timestamp()
            licences.append(metrics.LicenceFact(lid, type_code, dept, issued_s, None, revoked))
    pushes = [
        metrics.PushFact(lid, dept, status, _seconds(created) or 0.0, _seconds(synced))
        for lid, dept, status, created, synced in session.execute(
            sa.select(
                col(LicenceOutbox.licence_id),
                col(Licence.issuer_department_id),
                col(LicenceOutbox.status),
                col(LicenceOutbox.created_at),
                col(LicenceOutbox.synced_at),
            )
            .join(Licence, col(Licence.id) == LicenceOutbox.licence_id)
            .where(col(LicenceOutbox.created_at) <= as_of)
        ).all()
    ]
    return licences, pushes


def load_licence_facts(session: Session, facts: metrics.Facts) -> None:
    """Licence and outbox groups as of ``facts.as_of`` (the licence registry's tables).

    On PostgreSQL the grouping runs in SQL (140k licences in a fraction of a second); elsewhere the
    rows are grouped by ``metrics.group_licences`` / ``group_pushes``, which define the groups (a
    test checks that both agree).
    """
    facts.producers = load_producers(session)
    if session.connection().dialect.name != "postgresql":
        licences, pushes = load_licence_rows(session, facts.as_of)
        facts.licences = metrics.group_licences(licences, facts)
        facts.pushes = metrics.group_pushes(pushes, facts)
        facts.acks = metrics.group_acks(pushes, facts)
        return
    lo = facts.period_start
    hi = min(facts.period_end, facts.as_of)
    params = {"lo": lo, "hi": hi, "as_of": facts.as_of}
    facts.licences = sorted(
        metrics.LicenceGroup(*r) for r in session.execute(LICENCE_GROUPS_SQL, params).all()
    )
    facts.pushes = sorted(metrics.PushGroup(*r) for r in session.execute(PUSH_GROUPS_SQL, params).all())
    facts.acks = sorted(
        metrics.AckGroup(*r)
        for r in session.execute(
            ACK_GROUPS_SQL, {"lo": lo, "period_end": facts.period_end, "as_of": facts.as_of}
        ).all()
    )


def load_facts(session: Session, year: int, as_of: datetime | None = None) -> metrics.Facts:
    """Everything the metric definitions read, as the database stood at ``as_of`` (default: year end)."""
    start, end = year_bounds(year)
    as_of = as_of or default_as_of(year)
    if as_of.tzinfo is None:
        raise Invalid("统计时点必须带时区")
    facts = metrics.Facts(
        as_of=as_of, period_start=start, period_end=end, **load_catalogue_facts(session, as_of)
    )
    facts.cases, facts.case_months = load_case_facts(session, year, as_of)
    facts.cumulative_cases = load_cumulative_cases(session, as_of)
    if facts.cases:
        facts.case_departments = dict(
            _fetch(
                session,
                select(
                    col(ImplementationEntry.id),
                    col(ImplementationEntry.department_id),
                ),
            )
        )
    facts.bundles = load_bundle_facts(session, as_of)
    load_licence_facts(session, facts)
    sources = set()
    if facts.entries:
        sources.add("catalogue")
    if facts.cases:
        sources.add("cases")
    if facts.licences:
        sources.add("licences")
    if facts.pushes:
        sources.add("sync")
    facts.sources = frozenset(sources)
    return facts


def compute_metrics(session: Session, year: int, as_of: datetime | None = None) -> dict[str, metrics.Result]:
    return metrics.compute_all(load_facts(session, year, as_of))


# ---- drill-down ------------------------------------------------------------------------------------


def entries_by_ids(session: Session, ids: Iterable[int], limit: int = 500) -> list[dict[str, Any]]:
    id_list = sorted(set(ids))[:limit]
    if not id_list:
        return []
    rows = session.execute(
        sa.select(
            col(ImplementationEntry.id),
            col(ImplementationEntry.task_code),
            col(ImplementationEntry.name),
            col(ImplementationEntry.task_type),
            col(ImplementationEntry.status),
            col(ImplementationEntry.visits),
            col(ImplementationEntry.online_depth),
            col(ImplementationEntry.no_contact),
            col(Department.name).label("dept"),
        )
        .join(Department, col(Department.id) == ImplementationEntry.department_id)
        .where(col(ImplementationEntry.id).in_(id_list))
        .order_by(col(ImplementationEntry.id))
    ).all()
    return [dict(r._mapping) for r in rows]


def departments_by_ids(session: Session, ids: Iterable[int]) -> list[dict[str, Any]]:
    id_list = sorted(set(ids))
    if not id_list:
        return []
    rows = session.execute(
        select(col(Department.id), col(Department.name), col(Department.uscc), col(Department.level))
        .where(col(Department.id).in_(id_list))
        .order_by(col(Department.id))
    ).all()
    return [dict(r._mapping) for r in rows]


def items_by_ids(session: Session, ids: Iterable[int], limit: int = 500) -> list[dict[str, Any]]:
    id_list = sorted(set(ids))[:limit]
    if not id_list:
        return []
    rows = session.execute(
        sa.select(
            col(CatalogItem.id),
            col(CatalogItem.code),
            col(CatalogItem.name),
            col(CatalogItem.task_type),
            col(CatalogItem.use_levels),
        )
        .where(col(CatalogItem.id).in_(id_list))
        .order_by(col(CatalogItem.id))
    ).all()
    return [dict(r._mapping) for r in rows]


# ---- case statistics ---------------------------------------------------------------------------------

CASE_COLUMNS = ("task_code", "month", "received", "online", "finished", "on_time")
CASE_COLUMN_LABELS = {
    "received": "收件数",
    "online": "网上申报数",
    "finished": "办结数",
    "on_time": "按时办结数",
}
MAX_COUNT = 10_000_000


@dataclass
class CaseImportResult:
    created: int
    updated: int
    rows: int


def _parse_month(value: str, year: int) -> tuple[int | None, str | None]:
    text = value.strip()
    try:
        y_text, m_text = text.split("-")
        y, m = int(y_text), int(m_text)
    except ValueError:
        return None, f"月份“{value}”格式应为 YYYY-MM"
    if not 1 <= m <= 12:
        return None, f"月份“{value}”不存在"
    if y != year:
        return None, f"月份 {text} 不在 {year} 年内"
    return m, None



def entry_ids_by_task_code(session: Session, codes: Iterable[str]) -> dict[str, int]:
    """{实施编码: entry id} of the given codes that exist (one query; unknown codes are absent)."""
    wanted = list(codes)
    if not wanted:
        return {}
    rows = session.execute(
        select(col(ImplementationEntry.task_code), col(ImplementationEntry.id)).where(
            col(ImplementationEntry.task_code).in_(wanted)
        )
    ).all()
    return {code: entry_id for code, entry_id in rows}

def parse_case_rows(
    session: Session, rows: list[dict[str, Any]], year: int, line_of: list[int] | None = None
) -> list[tuple[int, int, dict[str, int]]]:
    """Validate every row; raise one Invalid naming each bad line and field. Nothing is written here."""
    check_year(year)
    errors: dict[str, list[str]] = {}
    codes = {str(r.get("task_code") or "").strip() for r in rows}
    known = entry_ids_by_task_code(session, codes)
    parsed: list[tuple[int, int, dict[str, int]]] = []
    seen: dict[tuple[int, int], int] = {}
    for index, row in enumerate(rows):
        line = line_of[index] if line_of else index + 1
        where = f"第{line}行"
        problems: list[str] = []
        code = str(row.get("task_code") or "").strip()
        entry_id = known.get(code)
        if not code:
            problems.append("缺少实施编码 task_code")
        elif entry_id is None:
            problems.append(f"未知的实施编码 {code}")
        month, month_error = _parse_month(str(row.get("month") or ""), year)
        if month_error:
            problems.append(month_error)
        counts: dict[str, int] = {}
        for column, label in CASE_COLUMN_LABELS.items():
            raw = row.get(column)
            text = str(raw).strip()
            try:
                # Plain ASCII digits only: int() also reads "１", Arabic-Indic digits and "1_000".
                digits = text[1:] if text.startswith("-") else text
                if not isinstance(raw, int) and not (digits.isascii() and digits.isdigit()):
                    raise ValueError(text)
                value = int(text) if not isinstance(raw, int) else raw
            except (TypeError, ValueError):
                problems.append(f"{label} {column}“{raw if raw is not None else ''}”不是整数")
                continue
            if value < 0:
                problems.append(f"{label} {column} 不能为负数（{value}）")
            elif value > MAX_COUNT:
                problems.append(f"{label} {column} 过大（{value}）")
            else:
                counts[column] = value
        if len(counts) == 4:
            if counts["online"] > counts["received"]:
                problems.append("网上申报数不能大于收件数")
            if counts["on_time"] > counts["finished"]:
                problems.append("按时办结数不能大于办结数")
        if entry_id is not None and month is not None:
            previous = seen.get((entry_id, month))
            if previous is not None:
                problems.append(f"与第{previous}行重复（同一事项同一月份）")
            seen[(entry_id, month)] = line
        if problems:
            errors[where] = problems
        elif entry_id is not None and month is not None:
            parsed.append((entry_id, month, counts))
    if errors:
        raise Invalid(f"办件统计有 {len(errors)} 行错误，未导入任何数据", errors)
    if not parsed:
        raise Invalid("办件统计没有数据行", {"file": ["没有数据行"]})
    return parsed


def read_case_csv(text: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Rows of a case-statistics CSV and the file line number of each (the line a row starts on).

    Wrong columns (missing, unknown or named twice) raise Invalid, and so does any line that cannot be
    read (a field over the csv module's limit was a traceback, and a 500 on the upload page)."""
    rows = text_records(text)
    first = next(rows, None)
    header = [h.strip() for h in first.values] if first is not None else []
    problems = [first.problem] if first is not None and first.problem else []
    problems = problems or header_problems(header, CASE_COLUMNS, CASE_COLUMNS)
    if problems:
        raise Invalid(f"办件统计文件的列应为 {','.join(CASE_COLUMNS)}", {"第1行": problems})
    taken = [(line, row) for line, row in table_rows(rows, header, "办件统计文件") if any(row.values())]
    return [row for _line, row in taken], [line for line, _row in taken]


def import_case_stats(
    session: Session,
    actor: Principal,
    *,
    year: int,
    rows: list[dict[str, Any]],
    line_of: list[int] | None = None,
    source: str = "csv",
) -> CaseImportResult:
    """Upsert monthly case counts per entry for one year; all rows valid or nothing is written.

    Administrators import for every department; department staff only for their own entries.
    """
    if not actor.is_authenticated:
        raise Forbidden("请先登录")
    parsed = parse_case_rows(session, rows, year, line_of)
    if not actor.is_admin:
        own = (
            {
                i
                for (i,) in session.execute(
                    select(col(ImplementationEntry.id)).where(
                        col(ImplementationEntry.department_id) == actor.department_id
                    )
                ).all()
            }
            if actor.department_id
            else set()
        )
        foreign = [i for i, (entry_id, _m, _c) in enumerate(parsed) if entry_id not in own]
        if foreign:
            raise Forbidden(
                "只能导入本部门事项的办件统计",
                {
                    f"第{(line_of or [])[i] if line_of else i + 1}行": ["不是本部门的事项"]
                    for i in foreign[:20]
                },
            )
    existing = {
        (s.entry_id, s.month): s
        for s in session.exec(
            select(CaseStat).where(
                col(CaseStat.year) == year, col(CaseStat.entry_id).in_({p[0] for p in parsed})
            )
        ).all()
    }
    created = updated = 0
    now = utcnow()
    for entry_id, month, counts in parsed:
        stat = existing.get((entry_id, month))
        if stat is None:
            session.add(
                CaseStat(entry_id=entry_id, year=year, month=month, source=source, imported_at=now, **counts)
            )
            created += 1
        elif any(getattr(stat, k) != v for k, v in counts.items()):
            for k, v in counts.items():
                setattr(stat, k, v)
            stat.source, stat.imported_at = source, now
            updated += 1
    session.flush()
    record(
        session,
        actor=actor,
        action="reports.import_case_stats",
        entity_type="case_stats",
        entity_id=str(year),
        new={"rows": len(parsed), "created": created, "updated": updated, "source": source},
    )
    return CaseImportResult(created=created, updated=updated, rows=len(parsed))


def case_stat_years(session: Session) -> list[int]:
    """Years with case figures: imported monthly aggregates, or case records (by acceptance date)."""
    years = {y for (y,) in session.execute(select(col(CaseStat.year)).distinct()).all()}
    first, last = session.execute(
        sa.select(sa.func.min(col(CaseRecord.accept_date)), sa.func.max(col(CaseRecord.accept_date)))
    ).one()
    if first is not None and last is not None:
        years |= set(range(first.year, last.year + 1))
    return sorted(years)


def latest_year_with_data(session: Session, this_year: int) -> int:
    """The dashboard's default year: the latest year, up to ``this_year``, that holds recorded data.

    Recorded data is case statistics, a licence record or an entered template table; the catalogue
    itself is not counted (it exists every year). Without any, the current year.
    """
    from licenses.models import Licence

    years = set(case_stat_years(session))
    years |= {y for (y,) in session.execute(select(col(TemplateTable.year)).distinct()).all()}
    newest_licence = session.execute(sa.select(sa.func.max(col(Licence.created_at)))).scalar()
    if newest_licence is not None:
        years.add(newest_licence.astimezone(CHINA_TZ).year)
    return max((y for y in years if MIN_YEAR <= y <= this_year), default=this_year)


def require_report_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise Forbidden("仅区级管理员可执行此操作")


# ---- template tables --------------------------------------------------------------------------------


def save_template_table(
    session: Session, actor: Principal, *, year: int, table: str, values: dict[str, Any]
) -> TemplateTable:
    """Store one template table after checking every invariant (admin only); Invalid names each cell."""
    from reports import template_tables

    require_report_admin(actor)
    check_year(year)
    clean = template_tables.validate(table, values)
    row = session.exec(
        select(TemplateTable).where(col(TemplateTable.year) == year, col(TemplateTable.table) == table)
    ).first()
    old = None
    if row is None:
        row = TemplateTable(year=year, table=table, values=clean, updated_by=actor.name)
        session.add(row)
    else:
        old = dict(row.values)
        row.values, row.updated_by, row.updated_at = clean, actor.name, utcnow()
    session.flush()
    record(
        session,
        actor=actor,
        action="reports.save_template_table",
        entity_type="template_table",
        entity_id=f"{year}:{table}",
        old=old,
        new=clean,
    )
    return row


def template_table_values(session: Session, year: int) -> dict[str, dict[str, Any] | None]:
    rows = {
        t.table: t.values
        for t in session.exec(select(TemplateTable).where(col(TemplateTable.year) == year)).all()
    }
    return {t: rows.get(t) for t in ("2", "3", "4")}
