"""Coverage metrics: every definition in one place, versioned, pure (no I/O).

``services.load_facts`` turns the database as of a date into the plain ``Facts`` below; each
definition turns ``Facts`` into a ``Rate`` (numerator, denominator and the items behind both), a
``Count`` or a ``Table``. Changing what a figure means requires a new ``DEFINITIONS_VERSION``: the
version is frozen into every snapshot and printed in the report's appendix.

Formulas follow standards §2 and §8; choices the standards leave open are stated in each
definition's ``formula`` text (also rendered in docs/reports.md and the report appendix).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from catalog.models import NO_CONTACT_SCOPE_TYPES, ON_APPLICATION_TYPES, TASK_TYPES
from catalog.norules import derive_depth_level
from core.types import CHINA_TZ

# 2.0 (2026-11-30): rates over entries leave 未填报 out of numerator and denominator; 网上办理深度 is the
# catalogue's rule (catalog.norules.derive_depth_level: Ⅳ needs both 4 and 5, plus 6 or 7, and 0 visits);
# monthly case figures come from case records (imported aggregates only where no record covers a month).
# 3.0 (2026-11-30): 电子证照部门覆盖率 over the departments whose published entries produce a licence type
# (证照目录 关联事项), not over the departments that already issued; 推送市库的证照记录 counts distinct
# licence versions the city registry acknowledged (first acknowledged in the year; the outbox change events
# are their own figure); 镇/村级认领事项数 count distinct 公共服务 basic items (the entries beside them);
# cumulative (累计) figures beside the yearly licences issued, licences pushed, change events and cases.
DEFINITIONS_VERSION = "3.0"

# The catalogue owns the type codes, their labels and the two scopes; the metrics only read them.
TYPE_LABELS = TASK_TYPES
SIX_TYPES = NO_CONTACT_SCOPE_TYPES
ON_APPLICATION = ON_APPLICATION_TYPES
DEPTH_LABELS = {4: "Ⅳ级 全程网办", 3: "Ⅲ级", 2: "Ⅱ级", 1: "Ⅰ级", 0: "未开通网办"}

PUBLISHED = "published"
RETIRED = "retired"


# ---- facts: the data a definition may look at -------------------------------------------------


class EntryFact(NamedTuple):
    """An implementation entry as it stood on the as-of date."""

    id: int
    task_code: str
    name: str
    task_type: str
    level: str
    department_id: int
    division_code: str
    item_id: int
    status: str
    applicable: bool = True
    visits: int | None = None  # None: 到办事现场次数 not recorded (未填报), never counted as a number
    online_depth: frozenset[str] = frozenset()
    no_contact: bool = False
    drift: bool = False
    # Whether an upper-level item exists to compare with: without one, 三级四同 cannot be checked and
    # the entry is left out of the drift rate (never counted as "no drift").
    drift_checkable: bool = True


class ItemFact(NamedTuple):
    id: int
    code: str
    name: str
    task_type: str
    use_levels: frozenset[str]
    county_only: bool = False


class DepartmentFact(NamedTuple):
    id: int
    name: str
    level: str
    division_code: str


class DivisionFact(NamedTuple):
    code: str
    name: str
    level: str
    parent_code: str | None


class CaseFact(NamedTuple):
    """Case counts of one entry in one month (``month`` 0: summed over the period)."""

    entry_id: int
    month: int
    received: int
    online: int
    finished: int
    on_time: int


class CaseMonth(NamedTuple):
    """Case counts of all entries in one month, and the entries that had cases then."""

    month: int
    received: int
    online: int
    finished: int
    on_time: int
    entry_ids: tuple[int, ...]


def group_cases(rows: Iterable[CaseFact]) -> tuple[list[CaseFact], list[CaseMonth]]:
    """Monthly rows → per-entry period sums and per-month totals (services does this in SQL on PostgreSQL)."""
    per_entry: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    per_month: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    month_ids: dict[int, set[int]] = defaultdict(set)
    for r in rows:
        for acc in (per_entry[r.entry_id], per_month[r.month]):
            acc[0] += r.received
            acc[1] += r.online
            acc[2] += r.finished
            acc[3] += r.on_time
        month_ids[r.month].add(r.entry_id)
    return (
        [CaseFact(e, 0, *v) for e, v in sorted(per_entry.items())],
        [
            CaseMonth(m, received, online, finished, on_time, tuple(sorted(month_ids[m])))
            for m, (received, online, finished, on_time) in sorted(per_month.items())
        ],
    )


class BundleFact(NamedTuple):
    id: int
    name: str
    entry_ids: tuple[int, ...]


class LicenceFact(NamedTuple):
    """A licence version. Times are POSIX timestamps (seconds): 140k of these must load fast.

    ``issued_at`` (颁发日期) for a first version, ``amended_at`` for a later version (变更),
    ``revoked_at`` when it was revoked (注销/吊销), else None.
    """

    id: int
    type_code: str
    department_id: int | None
    issued_at: float | None = None
    amended_at: float | None = None
    revoked_at: float | None = None


class PushFact(NamedTuple):
    """One outbox record (a licence version to push to the city registry); times are timestamps."""

    licence_id: int
    department_id: int | None
    status: str  # pending / sent / failed / skipped / superseded
    created_at: float
    sent_at: float | None = None


class LicenceGroup(NamedTuple):
    """Licences of one type from one issuing department: how many exist as of the date, how many
    were issued, amended and revoked within the period (cut at the as-of date), and how many first
    versions (签发, not 变更) were recorded by the as-of date (the cumulative 签发)."""

    type_code: str
    department_id: int | None
    existing: int
    issued: int
    amended: int
    revoked: int
    first_versions: int


class PushGroup(NamedTuple):
    """Outbox records of one department sharing state as of the date, creation month within the
    period (0 = outside it) and lag band (index into LAG_BANDS, -1 when not sent)."""

    department_id: int | None
    state: str
    month: int
    lag_band: int
    records: int  # not `count`: that would shadow tuple.count


class AckGroup(NamedTuple):
    """What the city registry acknowledged (outbox records ``sent`` by the as-of moment) for the licences
    of one issuing department, by month of acknowledgement: ``versions`` counts each licence version
    once, in the month of its first acknowledged record; ``events`` counts every acknowledged record
    (issue, amend, suspend, resume, revoke) in its own month. ``month`` is 1–12 within the period,
    0 before it, 13 after it (an as-of date past the year's end)."""

    department_id: int | None
    month: int
    versions: int
    events: int


class ProducerFact(NamedTuple):
    """证照目录 关联事项: the 实施编码 of an entry whose result is a licence of ``type_code``."""

    task_code: str
    type_code: str


@dataclass
class Facts:
    """Everything the definitions read. ``sources`` names the data sets that were available at all."""

    as_of: datetime
    period_start: datetime
    period_end: datetime
    entries: list[EntryFact] = field(default_factory=list)
    items: list[ItemFact] = field(default_factory=list)
    departments: list[DepartmentFact] = field(default_factory=list)
    divisions: list[DivisionFact] = field(default_factory=list)
    cases: list[CaseFact] = field(default_factory=list)  # per entry, summed over the period
    case_months: list[CaseMonth] = field(default_factory=list)
    bundles: list[BundleFact] = field(default_factory=list)
    licences: list[LicenceGroup] = field(default_factory=list)
    pushes: list[PushGroup] = field(default_factory=list)
    acks: list[AckGroup] = field(default_factory=list)
    producers: list[ProducerFact] = field(default_factory=list)
    # Case counts per entry summed over every year up to the as-of date (the 累计 figures).
    cumulative_cases: list[CaseFact] = field(default_factory=list)
    sources: frozenset[str] = frozenset()
    # Department of every entry named in the case statistics, even one created after the as-of date
    # (a month's cases belong to the period, not to the catalogue's state on that date).
    case_departments: dict[int, int] = field(default_factory=dict)


# ---- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """numerator / denominator, with the ids of the items behind each (``kind`` says what they are)."""

    key: str
    label: str
    numerator: int
    denominator: int
    numerator_ids: tuple[int, ...]
    denominator_ids: tuple[int, ...]
    kind: str = "entry"
    missing: str | None = None
    # Entries in scope whose element was not recorded (left out of both sides); None for a rate that
    # has no such notion. 填报率 = denominator / (denominator + not_recorded).
    not_recorded: int | None = None

    @property
    def value(self) -> float | None:
        if self.missing or self.denominator == 0:
            return None
        return self.numerator / self.denominator

    @property
    def reporting_rate(self) -> float | None:
        """填报率: the share of the entries in scope whose element is recorded."""
        if self.not_recorded is None:
            return None
        in_scope = self.denominator + self.not_recorded
        return self.denominator / in_scope if in_scope else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "rate",
            "key": self.key,
            "label": self.label,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "numerator_ids": list(self.numerator_ids),
            "denominator_ids": list(self.denominator_ids),
            "kind": self.kind,
            "missing": self.missing,
            "not_recorded": self.not_recorded,
            "reporting_rate": self.reporting_rate,
        }


@dataclass(frozen=True)
class Count:
    key: str
    label: str
    value: int
    ids: tuple[int, ...]
    kind: str = "entry"
    missing: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "count",
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "ids": list(self.ids),
            "kind": self.kind,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class Row:
    code: str
    label: str
    values: tuple[int | None, ...]
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Table:
    key: str
    label: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    kind: str = "entry"
    missing: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "table",
            "key": self.key,
            "label": self.label,
            "columns": list(self.columns),
            "rows": [
                {"code": r.code, "label": r.label, "values": list(r.values), "ids": list(r.ids)}
                for r in self.rows
            ],
            "kind": self.kind,
            "missing": self.missing,
        }


Result = Rate | Count | Table


@dataclass(frozen=True)
class Definition:
    key: str
    label: str
    group: str
    formula: str
    compute: Callable[[Facts], Result]


# ---- shared selections ---------------------------------------------------------------------------


def depth_level(codes: frozenset[str], visits: int | None) -> int:
    """网上办理深度 Ⅰ–Ⅳ by the catalogue's one rule (catalog.norules.derive_depth_level); 0 when no depth
    code is recorded (未开通网办 in the distribution)."""
    return derive_depth_level(codes, visits) or 0


def is_online_available(e: EntryFact) -> bool:
    return bool(e.online_depth & {"2", "3", "4", "5"})


def published(facts: Facts) -> list[EntryFact]:
    return [e for e in facts.entries if e.status == PUBLISHED and e.applicable]


def on_application(facts: Facts) -> list[EntryFact]:
    return [e for e in published(facts) if e.task_type in ON_APPLICATION]


def live(facts: Facts) -> list[EntryFact]:
    """Entries that exist (claimed or declined) and are not retired."""
    return [e for e in facts.entries if e.status != RETIRED]


def _ids(entries: Iterable[EntryFact]) -> tuple[int, ...]:
    return tuple(sorted(e.id for e in entries))


def _rate(
    key: str, label: str, num: Iterable[EntryFact], den: list[EntryFact], missing: str = "没有已发布的事项",
    not_recorded: int | None = None,
) -> Rate:
    num_list = list(num)
    return Rate(
        key, label, len(num_list), len(den), _ids(num_list), _ids(den), missing=None if den else missing,
        not_recorded=not_recorded,
    )


# ---- catalogue definitions -----------------------------------------------------------------------


def no_contact_rate(facts: Facts, task_type: str | None = None) -> Rate:
    scope = [
        e
        for e in published(facts)
        if e.task_type in SIX_TYPES and (task_type is None or e.task_type == task_type)
    ]
    key = "no_contact_rate" if task_type is None else f"no_contact_rate_{task_type}"
    label = "不见面率（六大类）" if task_type is None else f"不见面率·{TYPE_LABELS[task_type]}"
    return _rate(key, label, (e for e in scope if e.no_contact), scope, missing="没有已发布的该类事项")


def _full_online_unknown(e: EntryFact) -> bool:
    """到现场次数 not recorded and the depth codes do not already rule Ⅳ out (none recorded, or
    codes that would make it Ⅳ): neither a yes nor a no, so left out of both counts."""
    if e.visits is not None:
        return False
    # Codes that would make it Ⅳ if the visits were 0.
    return not e.online_depth or derive_depth_level(e.online_depth, 0) == 4


def _handling_not_recorded(e: EntryFact) -> bool:
    """Neither the depth codes nor the visits recorded: nothing is known about how it is handled."""
    return not e.online_depth and e.visits is None


def full_online_rate(facts: Facts) -> Rate:
    scope = on_application(facts)
    den = [e for e in scope if not _full_online_unknown(e)]
    return _rate(
        "full_online_rate", "全程网办率", (e for e in den if depth_level(e.online_depth, e.visits) == 4), den,
        not_recorded=len(scope) - len(den),
    )


def at_most_once_rate(facts: Facts) -> Rate:
    # Not recorded is left out of the numerator AND the denominator: it is neither ≤ 1 nor > 1.
    scope = on_application(facts)
    den = [e for e in scope if e.visits is not None]
    return _rate(
        "at_most_once_rate",
        "最多跑一次率",
        (e for e in den if e.visits is not None and e.visits <= 1),
        den,
        missing="没有填报了到办事现场次数的已发布依申请事项",
        not_recorded=len(scope) - len(den),
    )


def online_available_rate(facts: Facts) -> Rate:
    scope = on_application(facts)
    den = [e for e in scope if not _handling_not_recorded(e)]
    return _rate("online_available_rate", "网上可办率", (e for e in den if is_online_available(e)), den,
                 not_recorded=len(scope) - len(den))


def depth_distribution(facts: Facts) -> Table:
    den = [e for e in on_application(facts) if not _handling_not_recorded(e)]
    groups: dict[int, list[EntryFact]] = defaultdict(list)
    for e in den:
        groups[depth_level(e.online_depth, e.visits)].append(e)
    rows = tuple(
        Row(str(level), DEPTH_LABELS[level], (len(groups[level]),), _ids(groups[level]))
        for level in (4, 3, 2, 1, 0)
    )
    return Table(
        "depth_distribution",
        "网上办理深度分布",
        ("事项数",),
        rows,
        missing=None if den else "没有已发布的依申请事项",
    )


def _entry_counts(entries: list[EntryFact]) -> tuple[int, int, int, int]:
    claimed = [e for e in entries if e.applicable]
    return (
        len(claimed),
        sum(1 for e in entries if not e.applicable),
        sum(1 for e in claimed if e.status == PUBLISHED),
        sum(1 for e in claimed if e.status == PUBLISHED and e.no_contact),
    )


ENTRY_COLUMNS = ("已认领", "不适用", "已发布", "不见面")


def entries_by_department(facts: Facts) -> Table:
    by_dept: dict[int, list[EntryFact]] = defaultdict(list)
    for e in live(facts):
        by_dept[e.department_id].append(e)
    rows = tuple(
        Row(str(d.id), d.name, _entry_counts(by_dept[d.id]), _ids(by_dept[d.id]))
        for d in sorted(facts.departments, key=lambda d: (d.level, d.name, d.id))
        if d.level == "4"
    )
    return Table(
        "entries_by_department",
        "区级部门事项认领",
        ENTRY_COLUMNS,
        rows,
        missing=None if rows else "没有区级部门",
    )


def _by_division(facts: Facts, level: str) -> dict[str, list[EntryFact]]:
    out: dict[str, list[EntryFact]] = defaultdict(list)
    for e in live(facts):
        if e.level == level:
            out[e.division_code].append(e)
    return out


def entries_by_town(facts: Facts) -> Table:
    groups = _by_division(facts, "5")
    rows = tuple(
        Row(d.code, d.name, _entry_counts(groups[d.code]), _ids(groups[d.code]))
        for d in sorted(facts.divisions, key=lambda d: d.code)
        if d.level == "town"
    )
    return Table(
        "entries_by_town",
        "镇（街道）级事项认领",
        ENTRY_COLUMNS,
        rows,
        missing=None if rows else "没有镇（街道）区划",
    )


def entries_by_village(facts: Facts) -> Table:
    groups = _by_division(facts, "6")
    rows = tuple(
        Row(d.code, d.name, _entry_counts(groups[d.code]), _ids(groups[d.code]))
        for d in sorted(facts.divisions, key=lambda d: d.code)
        if d.level == "village"
    )
    return Table(
        "entries_by_village",
        "村（社区）级事项认领",
        ENTRY_COLUMNS,
        rows,
        missing=None if rows else "没有村（社区）区划",
    )


PUBLIC_SERVICE = "20"  # 公共服务: the type the 2018 report counts at town and village level
LEVEL_NAMES = {"4": "区级", "5": "镇（街道）级", "6": "村（社区）级"}


def _level_public_service_claims(facts: Facts, level: str) -> list[EntryFact]:
    """Live, applicable entries at a level whose basic item is a 公共服务 item (the item's type as the
    basic catalogue records it; the entry's own type where the item is not in the facts)."""
    item_type = {i.id: i.task_type for i in facts.items}
    return [
        e
        for e in live(facts)
        if e.level == level and e.applicable and item_type.get(e.item_id, e.task_type) == PUBLIC_SERVICE
    ]


def level_items_claimed(facts: Facts, level: str) -> Count:
    """Distinct 公共服务 basic items claimed at a level: the 2018 report's “镇级 73 项、村级 66 项”.

    An item claimed by seven towns is one item here; ``level_entries_claimed`` gives the entries
    behind it. Drill-down: the basic items.
    """
    entries = _level_public_service_claims(facts, level)
    items = sorted({e.item_id for e in entries})
    return Count(
        f"items_claimed_level_{level}",
        f"{LEVEL_NAMES[level]}认领公共服务事项数",
        len(items),
        tuple(items),
        kind="item",
        missing=None if facts.entries else "没有实施清单数据",
    )


def level_entries_claimed(facts: Facts, level: str) -> Count:
    """The implementation entries behind ``level_items_claimed``: one per (body, 公共服务 item) claim."""
    entries = _level_public_service_claims(facts, level)
    return Count(
        f"entries_claimed_level_{level}",
        f"{LEVEL_NAMES[level]}公共服务事项实施清单数",
        len(entries),
        _ids(entries),
        missing=None if facts.entries else "没有实施清单数据",
    )


def claim_coverage(facts: Facts, level: str) -> Rate:
    """Share of the (body, item) pairs a level must offer that have an answer (claimed or declined).

    Level 4: items whose 行使层级 includes 4, counted once each (which department must claim an item
    is not recorded). Levels 5 and 6: every body at that level × every item with that 行使层级 and
    not 仅县级实施.
    """
    items = [i for i in facts.items if level in i.use_levels and not (level != "4" and i.county_only)]
    answered = {(e.department_id, e.item_id) for e in live(facts) if e.level == level}
    name = LEVEL_NAMES[level]
    key = f"claim_coverage_level_{level}"
    if level == "4":
        item_ids = {i.id for i in items}
        done = sorted({item for (_d, item) in answered if item in item_ids})
        return Rate(
            key,
            f"{name}认领覆盖率",
            len(done),
            len(items),
            tuple(done),
            tuple(sorted(item_ids)),
            kind="item",
            missing=None if items else "基本目录中没有该层级事项",
        )
    bodies = [d for d in facts.departments if d.level == level]
    pairs = [(d.id, i.id) for d in bodies for i in items]
    done_pairs = [p for p in pairs if p in answered]
    # The items behind a pair rate: items at least one body has not answered (the gaps to chase).
    gap_items = sorted({i for (_d, i) in pairs if (_d, i) not in answered})
    return Rate(
        key,
        f"{name}认领覆盖率",
        len(done_pairs),
        len(pairs),
        tuple(sorted({i for (_d, i) in done_pairs})),
        tuple(gap_items),
        kind="item",
        missing=None if pairs else "该层级没有实施主体或没有应认领事项",
    )


def drift_count(facts: Facts) -> Rate:
    scope = live(facts)
    entries = [e for e in scope if e.drift_checkable]
    return _rate(
        "drift_rate", "三级四同偏差", (e for e in entries if e.drift), entries,
        missing="没有可比对的实施清单（未导入上级基本目录，无法核对三级四同）",
        not_recorded=len(scope) - len(entries),
    )


# ---- case statistics -------------------------------------------------------------------------------

NO_CASES = "本期没有导入办件统计"


def _case_rows(facts: Facts) -> list[CaseFact]:
    return facts.cases


def cases_received(facts: Facts) -> Count:
    rows = _case_rows(facts)
    return Count(
        "cases_received",
        "办件总量",
        sum(r.received for r in rows),
        tuple(sorted({r.entry_id for r in rows})),
        missing=None if rows else NO_CASES,
    )


def cases_received_cumulative(facts: Facts) -> Count:
    """办件总量（累计）: cases received in every year up to the as-of date (records, and the imported
    monthly aggregates for the months no record covers), beside the year's ``cases_received``."""
    rows = facts.cumulative_cases
    return Count(
        "cases_received_cumulative",
        "办件总量（累计）",
        sum(r.received for r in rows),
        tuple(sorted({r.entry_id for r in rows if r.received})),
        missing=None if rows else "截至统计日没有办件数据",
    )


def online_case_share(facts: Facts) -> Rate:
    rows = _case_rows(facts)
    return Rate(
        "online_case_share",
        "网办件占比",
        sum(r.online for r in rows),
        sum(r.received for r in rows),
        tuple(sorted({r.entry_id for r in rows if r.online})),
        tuple(sorted({r.entry_id for r in rows})),
        missing=None if rows and sum(r.received for r in rows) else NO_CASES,
    )


def on_time_rate(facts: Facts) -> Rate:
    rows = _case_rows(facts)
    finished = sum(r.finished for r in rows)
    return Rate(
        "on_time_rate",
        "按时办结率",
        sum(r.on_time for r in rows),
        finished,
        tuple(sorted({r.entry_id for r in rows if r.on_time})),
        tuple(sorted({r.entry_id for r in rows if r.finished})),
        missing=None if finished else NO_CASES,
    )


def _entry_department(facts: Facts) -> dict[int, int]:
    return {**facts.case_departments, **{e.id: e.department_id for e in facts.entries}}


def departments_online(facts: Facts) -> Rate:
    dept_of = _entry_department(facts)
    with_cases = {dept_of[r.entry_id] for r in facts.cases if r.received and r.entry_id in dept_of}
    online = {dept_of[r.entry_id] for r in facts.cases if r.online and r.entry_id in dept_of}
    return Rate(
        "departments_online",
        "网上办理部门数",
        len(online),
        len(with_cases),
        tuple(sorted(online)),
        tuple(sorted(with_cases)),
        kind="department",
        missing=None if with_cases else NO_CASES,
    )


CASE_COLUMNS = ("收件", "网上申报", "办结", "按时办结")


def _case_sums(rows: Iterable[CaseFact]) -> tuple[int, int, int, int]:
    r = list(rows)
    return (
        sum(x.received for x in r),
        sum(x.online for x in r),
        sum(x.finished for x in r),
        sum(x.on_time for x in r),
    )


def cases_by_month(facts: Facts) -> Table:
    by_month = {c.month: c for c in facts.case_months}
    rows = tuple(
        Row(
            f"{m:02d}",
            f"{m}月",
            (by_month[m].received, by_month[m].online, by_month[m].finished, by_month[m].on_time)
            if m in by_month
            else (None, None, None, None),
            by_month[m].entry_ids if m in by_month else (),
        )
        for m in range(1, 13)
    )
    return Table(
        "cases_by_month", "逐月办件量", CASE_COLUMNS, rows, missing=None if facts.cases else NO_CASES
    )


def cases_by_department(facts: Facts) -> Table:
    dept_of = _entry_department(facts)
    groups: dict[int, list[CaseFact]] = defaultdict(list)
    for r in facts.cases:
        if r.entry_id in dept_of:
            groups[dept_of[r.entry_id]].append(r)
    names = {d.id: d.name for d in facts.departments}
    rows = tuple(
        Row(
            str(d),
            names.get(d, str(d)),
            _case_sums(groups[d]),
            tuple(sorted({r.entry_id for r in groups[d]})),
        )
        for d in sorted(groups, key=lambda d: (-_case_sums(groups[d])[0], d))
    )
    return Table(
        "cases_by_department", "各部门办件量", CASE_COLUMNS, rows, missing=None if facts.cases else NO_CASES
    )


# ---- bundles ------------------------------------------------------------------------------------------


def bundles_published(facts: Facts) -> Count:
    return Count(
        "bundles_published",
        "套餐式场景服务（一件事）",
        len(facts.bundles),
        tuple(sorted(b.id for b in facts.bundles)),
        kind="bundle",
    )


# ---- licences and the sync --------------------------------------------------------------------------

NO_LICENCES = "没有电子证照数据"


def _stamp(when: datetime) -> float:
    return when.timestamp()


def _period_stamps(facts_or_bounds: Facts) -> tuple[float, float]:
    """[start, end] of the period cut at the as-of date, as timestamps."""
    f = facts_or_bounds
    return _stamp(f.period_start), min(_stamp(f.period_end), _stamp(f.as_of))


def push_state(status: str, sent_at: float | None, as_of: float) -> str:
    """sent / pending / failed / other (skipped, superseded) as of a timestamp.

    A record delivered after that moment was still pending then.
    """
    if status == "sent":
        return "sent" if sent_at is not None and sent_at <= as_of else "pending"
    if status in ("pending", "failed"):
        return status
    return "other"


LAG_BANDS = (("≤1分钟", 60.0), ("≤1小时", 3600.0), ("≤1天", 86400.0), (">1天", None))


def lag_band(created_at: float, sent_at: float) -> int:
    lag = sent_at - created_at
    for index, (_label, limit) in enumerate(LAG_BANDS):
        if limit is None or lag <= limit:
            return index
    return len(LAG_BANDS) - 1


def month_bounds(period_start: datetime) -> list[float]:
    year = period_start.astimezone(CHINA_TZ).year
    return [datetime(year, m, 1, tzinfo=CHINA_TZ).timestamp() for m in range(1, 13)]


def group_licences(licences: Iterable[LicenceFact], facts: Facts) -> list[LicenceGroup]:
    """The definition of the licence groups (services does the same in SQL on PostgreSQL)."""
    lo, hi = _period_stamps(facts)
    acc: dict[tuple[str, int | None], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for lic in licences:
        c = acc[(lic.type_code, lic.department_id)]
        c[0] += 1
        for slot, when in enumerate((lic.issued_at, lic.amended_at, lic.revoked_at), start=1):
            if when is not None and lo <= when <= hi:
                c[slot] += 1
        if lic.amended_at is None:  # a first version (签发), whatever its date
            c[4] += 1
    return sorted(LicenceGroup(t, d, *c) for (t, d), c in acc.items())


def group_pushes(pushes: Iterable[PushFact], facts: Facts) -> list[PushGroup]:
    """The definition of the push groups (services does the same in SQL on PostgreSQL)."""
    lo, hi = _period_stamps(facts)
    as_of = _stamp(facts.as_of)
    bounds = month_bounds(facts.period_start)
    acc: Counter[tuple[int | None, str, int, int]] = Counter()
    for p in pushes:
        state = push_state(p.status, p.sent_at, as_of)
        month = bisect_right(bounds, p.created_at) if lo <= p.created_at <= hi else 0
        band = lag_band(p.created_at, p.sent_at) if state == "sent" and p.sent_at is not None else -1
        acc[(p.department_id, state, month, band)] += 1
    return sorted(PushGroup(*key, n) for key, n in acc.items())


def ack_month(sent_at: float, facts: Facts) -> int:
    """0 before the period, 1–12 within it (China time), 13 after its end."""
    if sent_at < _stamp(facts.period_start):
        return 0
    if sent_at > _stamp(facts.period_end):
        return 13
    return bisect_right(month_bounds(facts.period_start), sent_at)


def group_acks(pushes: Iterable[PushFact], facts: Facts) -> list[AckGroup]:
    """The definition of the acknowledgement groups (services does the same in SQL on PostgreSQL).

    A record counts when the registry acknowledged it (status ``sent``) by the as-of moment; a licence
    version is counted once, at its first acknowledged record (ties: the earliest created)."""
    as_of = _stamp(facts.as_of)
    events: Counter[tuple[int | None, int]] = Counter()
    first: dict[int, tuple[float, float, int | None]] = {}
    for p in pushes:
        if push_state(p.status, p.sent_at, as_of) != "sent" or p.sent_at is None:
            continue
        events[(p.department_id, ack_month(p.sent_at, facts))] += 1
        seen = first.get(p.licence_id)
        if seen is None or (p.sent_at, p.created_at) < seen[:2]:
            first[p.licence_id] = (p.sent_at, p.created_at, p.department_id)
    versions: Counter[tuple[int | None, int]] = Counter(
        (dept, ack_month(sent_at, facts)) for sent_at, _c, dept in first.values()
    )
    return sorted(
        AckGroup(dept, month, versions[(dept, month)], events[(dept, month)])
        for dept, month in set(events) | set(versions)
    )


def _depts(groups: Iterable[Any]) -> tuple[int, ...]:
    return tuple(sorted({g.department_id for g in groups if g.department_id is not None}))


def licence_events(facts: Facts) -> Table:
    by_type: dict[str, list[LicenceGroup]] = defaultdict(list)
    for g in facts.licences:
        if g.issued or g.amended or g.revoked:
            by_type[g.type_code].append(g)
    rows = tuple(
        Row(
            code,
            code,
            (sum(g.issued for g in gs), sum(g.amended for g in gs), sum(g.revoked for g in gs)),
            _depts(gs),
        )
        for code, gs in sorted(by_type.items())
    )
    return Table(
        "licence_events",
        "本期电子证照签发、变更、注销（按证照类型）",
        ("签发", "变更", "注销"),
        rows,
        kind="department",
        missing=None if "licences" in facts.sources else NO_LICENCES,
    )


def licence_types_in_use(facts: Facts) -> Count:
    types = {g.type_code for g in facts.licences if g.existing}
    return Count(
        "licence_types",
        "在用证照类型数",
        len(types),
        (),
        kind="licence_type",
        missing=None if facts.licences else NO_LICENCES,
    )


NO_SYNC = "没有同步记录"


def licences_issued(facts: Facts) -> Count:
    """Licences issued (签发, first versions by their 颁发日期) within the period; drill-down: departments."""
    groups = [g for g in facts.licences if g.issued]
    return Count(
        "licences_issued",
        "本年签发电子证照",
        sum(g.issued for g in groups),
        _depts(groups),
        kind="department",
        missing=None if "licences" in facts.sources else NO_LICENCES,
    )


def licences_issued_cumulative(facts: Facts) -> Count:
    groups = [g for g in facts.licences if g.first_versions]
    return Count(
        "licences_issued_cumulative",
        "累计签发电子证照",
        sum(g.first_versions for g in groups),
        _depts(groups),
        kind="department",
        missing=None if "licences" in facts.sources else NO_LICENCES,
    )


def _acks(facts: Facts, key: str, label: str, attr: str, *, in_period: bool) -> Count:
    groups = [g for g in facts.acks if getattr(g, attr) and (not in_period or 1 <= g.month <= 12)]
    return Count(
        key,
        label,
        sum(getattr(g, attr) for g in groups),
        _depts(groups),
        kind="department",
        missing=None if "sync" in facts.sources else NO_SYNC,
    )


def licences_pushed(facts: Facts) -> Count:
    """Distinct licence versions the city registry first acknowledged within the period."""
    return _acks(facts, "licences_pushed", "本年推送市库的证照记录", "versions", in_period=True)


def licences_pushed_cumulative(facts: Facts) -> Count:
    return _acks(facts, "licences_pushed_cumulative", "累计推送市库的证照记录", "versions", in_period=False)


def sync_events_sent(facts: Facts) -> Count:
    """Outbox change events (issue, amend, suspend, resume, revoke) acknowledged within the period: a
    suspended and resumed licence is one record above and three events here."""
    return _acks(facts, "sync_events_sent", "本年市库确认的证照变更事件", "events", in_period=True)


def sync_events_sent_cumulative(facts: Facts) -> Count:
    return _acks(
        facts, "sync_events_sent_cumulative", "累计市库确认的证照变更事件", "events", in_period=False
    )


NO_PRODUCERS = "证照目录中没有关联“产生该证照”的实施清单事项"


def _producing_entries(facts: Facts) -> dict[int, list[tuple[EntryFact, frozenset[str]]]]:
    """Published, applicable entries whose 实施编码 produces a licence type, by department, with the
    type codes each produces."""
    types_of: dict[str, set[str]] = defaultdict(set)
    for p in facts.producers:
        types_of[p.task_code].add(p.type_code)
    out: dict[int, list[tuple[EntryFact, frozenset[str]]]] = defaultdict(list)
    for e in published(facts):
        if e.task_code in types_of:
            out[e.department_id].append((e, frozenset(types_of[e.task_code])))
    return out


def _acknowledging_departments(facts: Facts) -> set[int]:
    return {g.department_id for g in facts.acks if g.versions and g.department_id is not None}


def licence_department_coverage(facts: Facts) -> Rate:
    """电子证照部门覆盖率 = departments with ≥ 1 licence version acknowledged by the city registry by the
    as-of date ÷ departments whose published entries produce a licence type (证照目录 关联事项).

    A department that pushes licences but has no producing entry is outside the denominator (its
    entries lack the link); licence_coverage_by_department lists it with 0 producing entries."""
    producing = set(_producing_entries(facts))
    num = sorted(producing & _acknowledging_departments(facts))
    missing = None
    if not producing:
        missing = "没有已发布的产生证照的实施清单事项" if facts.producers else NO_PRODUCERS
    return Rate(
        "licence_department_coverage",
        "电子证照部门覆盖率",
        len(num),
        len(producing),
        tuple(num),
        tuple(sorted(producing)),
        kind="department",
        missing=missing,
    )


def licence_coverage_by_department(facts: Facts) -> Table:
    """Per department: published entries producing a licence type, the types they produce, and the
    licence versions acknowledged by the registry (cumulative). Drill-down: the producing entries."""
    producing = _producing_entries(facts)
    acked: Counter[int] = Counter()
    for g in facts.acks:
        if g.department_id is not None:
            acked[g.department_id] += g.versions
    names = {d.id: d.name for d in facts.departments}
    rows = tuple(
        Row(
            str(dept),
            names.get(dept, str(dept)),
            (
                len(producing.get(dept, [])),
                len({t for _e, types in producing.get(dept, []) for t in types}),
                acked[dept],
            ),
            _ids(e for e, _t in producing.get(dept, [])),
        )
        for dept in sorted(
            set(producing) | {d for d, n in acked.items() if n}, key=lambda d: (names.get(d, ""), d)
        )
    )
    return Table(
        "licence_coverage_by_department",
        "电子证照部门覆盖明细",
        ("产生证照的已发布事项", "证照类型", "市库已确认证照记录（累计）"),
        rows,
        missing=None if rows else NO_PRODUCERS,
    )


def push_failures(facts: Facts) -> Count:
    failed = [g for g in facts.pushes if g.state == "failed"]
    return Count(
        "push_failures",
        "推送失败记录",
        sum(g.records for g in failed),
        _depts(failed),
        kind="department",
        missing=None if "sync" in facts.sources else NO_SYNC,
    )


def push_lag(facts: Facts) -> Table:
    """Sent records by lag between creation and delivery, plus those still waiting."""
    groups: dict[int, list[PushGroup]] = defaultdict(list)
    for g in facts.pushes:
        if g.state == "sent":
            groups[g.lag_band].append(g)
        elif g.state == "pending":
            groups[-1].append(g)
    bands = [(i, label) for i, (label, _l) in enumerate(LAG_BANDS)] + [(-1, "待推送")]
    rows = tuple(
        Row(label, label, (sum(g.records for g in groups[i]),), _depts(groups[i])) for i, label in bands
    )
    return Table(
        "push_lag",
        "推送时延分布",
        ("记录数",),
        rows,
        kind="department",
        missing=None if "sync" in facts.sources else NO_SYNC,
    )


SYNC_STATES = ("sent", "pending", "failed", "other")


def sync_by_month(facts: Facts) -> Table:
    """Outbox records created in each month of the period, by their status as of the as-of date."""
    counts = [[0, 0, 0, 0] for _ in range(13)]
    depts: list[list[PushGroup]] = [[] for _ in range(13)]
    slot = {s: i for i, s in enumerate(SYNC_STATES)}
    for g in facts.pushes:
        counts[g.month][slot[g.state]] += g.records
        depts[g.month].append(g)
    rows = tuple(Row(f"{m:02d}", f"{m}月", tuple(counts[m]), _depts(depts[m])) for m in range(1, 13))
    return Table(
        "sync_by_month",
        "电子证照同步状态（按月）",
        ("已推送", "待推送", "失败", "跳过或被取代"),
        rows,
        kind="department",
        missing=None if "sync" in facts.sources else NO_SYNC,
    )


# ---- the registry -----------------------------------------------------------------------------------

PUBLISHED_NOTE = "范围：截至统计日已发布、适用的实施清单事项。"

DEFINITIONS: list[Definition] = [
    Definition(
        "no_contact_rate",
        "不见面率（六大类）",
        "catalogue",
        "六大类（行政许可、行政确认、行政奖励、行政给付、行政征收、其他行政权力）中"
        "标记为不见面审批的事项数 ÷ "
        "六大类事项数。" + PUBLISHED_NOTE,
        no_contact_rate,
    ),
    *[
        Definition(
            f"no_contact_rate_{t}",
            f"不见面率·{TYPE_LABELS[t]}",
            "catalogue",
            f"{TYPE_LABELS[t]}中标记为不见面审批的事项数 ÷ {TYPE_LABELS[t]}事项数。" + PUBLISHED_NOTE,
            partial(no_contact_rate, task_type=t),
        )
        for t in SIX_TYPES
    ],
    Definition(
        "full_online_rate",
        "全程网办率",
        "catalogue",
        "网上办理深度Ⅳ级（含互联网受理或办理，且含结果反馈或电子证照反馈）且到现场次数为0的依申请事项数 ÷ "
        "依申请事项数（到现场次数未填报、且网上办理深度未填报或够Ⅳ级的事项不计入分子和分母）。"
        + PUBLISHED_NOTE,
        full_online_rate,
    ),
    Definition(
        "at_most_once_rate",
        "最多跑一次率",
        "catalogue",
        "到办事现场次数≤1的依申请事项数 ÷ 填报了到办事现场次数的依申请事项数（未填报的不计入分子和分母）。"
        + PUBLISHED_NOTE,
        at_most_once_rate,
    ),
    Definition(
        "online_available_rate",
        "网上可办率",
        "catalogue",
        "网上办理深度含互联网收件、预审、受理或办理之一的依申请事项数 ÷ 依申请事项数"
        "（网上办理深度和到现场次数均未填报的事项不计入分子和分母）。" + PUBLISHED_NOTE,
        online_available_rate,
    ),
    Definition(
        "depth_distribution",
        "网上办理深度分布",
        "catalogue",
        "依申请事项按网上办理深度Ⅰ–Ⅳ级分组计数（Ⅳ级＝含4或5且含6或7且0次到现场；Ⅲ级＝含3、4或5；"
        "Ⅱ级＝含2；Ⅰ级＝仅1；网上办理深度和到现场次数均未填报的事项不计入）。" + PUBLISHED_NOTE,
        depth_distribution,
    ),
    Definition(
        "entries_by_department",
        "区级部门事项认领",
        "levels",
        "每个区级部门截至统计日未停用的实施清单：已认领（适用）、不适用、已发布、已发布且不见面。",
        entries_by_department,
    ),
    Definition(
        "entries_by_town",
        "镇（街道）级事项认领",
        "levels",
        "每个镇（街道）的镇级实施清单：已认领、不适用、已发布、不见面。",
        entries_by_town,
    ),
    Definition(
        "entries_by_village",
        "村（社区）级事项认领",
        "levels",
        "每个村（社区）的村级实施清单：已认领、不适用、已发布、不见面。",
        entries_by_village,
    ),
    *[
        d
        for level in ("5", "6")
        for d in (
            Definition(
                f"items_claimed_level_{level}",
                f"{LEVEL_NAMES[level]}认领公共服务事项数",
                "levels",
                f"{LEVEL_NAMES[level]}实施主体认领（适用、未停用）的实施清单所对应的公共服务基本目录事项数，"
                "按基本目录事项去重（同一事项被多个主体认领计一项；事项类型取基本目录的记录）。",
                partial(level_items_claimed, level=level),
            ),
            Definition(
                f"entries_claimed_level_{level}",
                f"{LEVEL_NAMES[level]}公共服务事项实施清单数",
                "levels",
                f"上一项背后的实施清单数：{LEVEL_NAMES[level]}实施主体认领（适用、未停用）的公共服务事项实施清单"
                "（同一事项被两个主体认领计两条）。",
                partial(level_entries_claimed, level=level),
            ),
        )
    ],
    Definition(
        "claim_coverage_level_4",
        "区级认领覆盖率",
        "levels",
        "行使层级含县级的基本目录事项中，已有区级实施清单（认领或声明不适用）的事项数 ÷ 该类事项数。",
        lambda f: claim_coverage(f, "4"),
    ),
    Definition(
        "claim_coverage_level_5",
        "镇（街道）级认领覆盖率",
        "levels",
        "（镇级实施主体 × 行使层级含镇级且非仅县级实施的事项）中已认领或声明不适用的组合数 ÷ 组合总数。",
        lambda f: claim_coverage(f, "5"),
    ),
    Definition(
        "claim_coverage_level_6",
        "村（社区）级认领覆盖率",
        "levels",
        "（村级实施主体 × 行使层级含村级且非仅县级实施的事项）中已认领或声明不适用的组合数 ÷ 组合总数。",
        lambda f: claim_coverage(f, "6"),
    ),
    Definition(
        "drift_rate",
        "三级四同偏差",
        "levels",
        "名称、类型、设定依据或基本编码与基本目录不一致的未停用实施清单数 ÷ 未停用实施清单数"
        "（与基本目录的当前值比较）。",
        drift_count,
    ),
    Definition("cases_received", "办件总量", "cases", "统计年度内截至统计日各月收件数之和。", cases_received),
    Definition(
        "cases_received_cumulative",
        "办件总量（累计）",
        "cases",
        "截至统计日历年各月收件数之和（逐件办件记录按受理日期；没有办件记录的“事项·月”用导入的月度汇总）。",
        cases_received_cumulative,
    ),
    Definition(
        "online_case_share", "网办件占比", "cases", "网上申报件数 ÷ 收件数（统计年度内）。", online_case_share
    ),
    Definition(
        "on_time_rate", "按时办结率", "cases", "按时办结件数 ÷ 办结件数（统计年度内）。", on_time_rate
    ),
    Definition(
        "departments_online",
        "网上办理部门数",
        "cases",
        "统计年度内至少有1件网上申报办件的部门数 ÷ 有办件的部门数。",
        departments_online,
    ),
    Definition(
        "cases_by_month",
        "逐月办件量",
        "cases",
        "按月份汇总的收件、网上申报、办结、按时办结数。",
        cases_by_month,
    ),
    Definition(
        "cases_by_department",
        "各部门办件量",
        "cases",
        "按实施部门汇总的办件数，按收件数降序。",
        cases_by_department,
    ),
    Definition(
        "bundles_published",
        "套餐式场景服务（一件事）",
        "bundles",
        "截至统计日已上线的套餐式场景服务数。",
        bundles_published,
    ),
    Definition(
        "licence_types",
        "在用证照类型数",
        "licences",
        "截至统计日有证照记录的证照类型数。",
        licence_types_in_use,
    ),
    Definition(
        "licence_events",
        "本期证照签发、变更、注销",
        "licences",
        "统计年度内（截至统计日）按证照类型计的签发、变更、注销证照数。",
        licence_events,
    ),
    Definition(
        "licences_issued",
        "本年签发电子证照",
        "licences",
        "颁发日期在统计年度内（截至统计日）的证照首个版本数（变更产生的新版本不计）。",
        licences_issued,
    ),
    Definition(
        "licences_issued_cumulative",
        "累计签发电子证照",
        "licences",
        "截至统计日已登记的证照首个版本数（变更产生的新版本不计）。",
        licences_issued_cumulative,
    ),
    Definition(
        "licences_pushed",
        "本年推送市库的证照记录",
        "licences",
        "市级电子证照库首次确认接收（同步记录状态为已推送）发生在统计年度内（截至统计日）的证照版本数，"
        "按证照版本（电子证照标识）去重：同一版本的暂扣、恢复等变更不重复计数。",
        licences_pushed,
    ),
    Definition(
        "licences_pushed_cumulative",
        "累计推送市库的证照记录",
        "licences",
        "截至统计日市级电子证照库已确认接收的证照版本数（按电子证照标识去重）。",
        licences_pushed_cumulative,
    ),
    Definition(
        "sync_events_sent",
        "本年市库确认的证照变更事件",
        "licences",
        "统计年度内（截至统计日）市级电子证照库确认接收的同步记录数（签发、变更、暂扣、恢复、注销各计一条），"
        "与按版本去重的证照记录分列。",
        sync_events_sent,
    ),
    Definition(
        "sync_events_sent_cumulative",
        "累计市库确认的证照变更事件",
        "licences",
        "截至统计日市级电子证照库确认接收的同步记录数（每次变更计一条）。",
        sync_events_sent_cumulative,
    ),
    Definition(
        "licence_department_coverage",
        "电子证照部门覆盖率",
        "licences",
        "截至统计日至少有1个证照版本已被市级电子证照库确认接收的部门数 ÷ 已发布实施清单中有产生证照事项"
        "（证照目录“关联事项”中角色为产生该证照的实施编码）的部门数；分子只计分母中的部门。",
        licence_department_coverage,
    ),
    Definition(
        "licence_coverage_by_department",
        "电子证照部门覆盖明细",
        "licences",
        "每个有产生证照事项或有证照已被市库确认的部门：产生证照的已发布事项数、证照类型数、"
        "市库已确认的证照版本数（累计）。",
        licence_coverage_by_department,
    ),
    Definition(
        "push_failures",
        "推送失败记录",
        "licences",
        "截至统计日状态为推送失败（等待重试或人工处理）的同步记录数。",
        push_failures,
    ),
    Definition(
        "push_lag",
        "推送时延分布",
        "licences",
        "已推送记录按生成到送达的时延分档计数，另列待推送记录数。",
        push_lag,
    ),
    Definition(
        "sync_by_month",
        "电子证照同步状态（按月）",
        "licences",
        "统计年度内每月生成的同步记录，按截至统计日的状态（已推送、待推送、失败、跳过或被取代）计数。",
        sync_by_month,
    ),
]

BY_KEY = {d.key: d for d in DEFINITIONS}
GROUP_LABELS = {
    "catalogue": "事项办理方式",
    "levels": "分级认领",
    "cases": "办件统计",
    "bundles": "一件事",
    "licences": "电子证照与同步",
}


def compute_all(facts: Facts) -> dict[str, Result]:
    return {d.key: d.compute(facts) for d in DEFINITIONS}


def type_counts(entries: Iterable[EntryFact]) -> Counter[str]:
    return Counter(e.task_type for e in entries)
