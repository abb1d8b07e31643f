"""The 要素质量检查 over the whole catalogue: every entry through catalog.quality, scored per
department and per town (for ``flask catalog check`` and the administrators' quality page).

Score (得分) of a group = entries with no error / entries checked, with the error and warning counts
beside it. Checked: every entry that is a real claim (not "not applicable here") and not retired,
whatever its status, because drafts are what the departments are working on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from catalog import entries as entry_services
from catalog import quality
from catalog.models import Department, Division, EntryStatus, ImplementationEntry

SCORE_DEFINITION = (
    "得分 = 没有“错误”的实施清单数 ÷ 检查的实施清单数。检查范围：除“本地不适用”和已停用以外的全部实施清单"
    "（含草稿和待审核）。“错误”阻止提交和审核通过；“提示”（含未填报的要素）只计数，不影响得分。"
)
DISTRICT_KEY = "district"
TOWN_LEVELS = ("5", "6")


@dataclass(frozen=True)
class EntryCheck:
    entry_id: int
    task_code: str
    name: str
    department_id: int
    division_code: str
    level: str
    status: str
    findings: list[quality.Finding]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.level == quality.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.level == quality.WARNING)

    @property
    def town(self) -> str:
        """The town (12-digit code) a town or village entry belongs to; DISTRICT_KEY otherwise."""
        if self.level in TOWN_LEVELS and len(self.division_code) == 12:
            return self.division_code[:9] + "000"
        return DISTRICT_KEY


@dataclass
class GroupScore:
    key: str
    label: str
    entries: int = 0
    clean: int = 0
    errors: int = 0
    warnings: int = 0
    by_code: Counter[str] = field(default_factory=Counter)

    @property
    def score(self) -> float:
        return self.clean / self.entries if self.entries else 0.0


def _checked_entries(session: Session) -> Iterator[ImplementationEntry]:
    stmt = (
        select(ImplementationEntry)
        .where(
            col(ImplementationEntry.applicable).is_(True),
            ImplementationEntry.status != EntryStatus.RETIRED.value,
        )
        .order_by(col(ImplementationEntry.id))
    )
    yield from session.exec(stmt)


Progress = Callable[[list[ImplementationEntry]], Iterable[ImplementationEntry]]


def check_catalogue(session: Session, progress: Progress | None = None) -> list[EntryCheck]:
    """Run every quality rule over every checked entry. Reads only."""
    entries = list(_checked_entries(session))
    rows: Iterable[ImplementationEntry] = progress(entries) if progress is not None else entries
    out = []
    for e in rows:
        out.append(EntryCheck(
            entry_id=e.id or 0, task_code=e.task_code, name=e.name, department_id=e.department_id,
            division_code=e.division_code, level=e.level, status=e.status,
            findings=entry_services.entry_findings(session, e),
        ))
    return out


def _score(groups: dict[str, GroupScore], key: str, label: str, check: EntryCheck) -> None:
    group = groups.setdefault(key, GroupScore(key, label))
    group.entries += 1
    group.clean += 0 if check.errors else 1
    group.errors += check.errors
    group.warnings += check.warnings
    group.by_code.update(f.code for f in check.findings)


def scores(session: Session, checks: list[EntryCheck], by: str) -> list[GroupScore]:
    """Scores per department (``by="department"``) or per town (``by="town"``; district-level entries
    form one group), lowest score first."""
    groups: dict[str, GroupScore] = {}
    if by == "department":
        names = {d.id: d.name for d in session.exec(select(Department))}
        for c in checks:
            _score(groups, str(c.department_id), names.get(c.department_id, str(c.department_id)), c)
    else:
        names_by_code = {d.code: d.name for d in session.exec(select(Division))}
        for c in checks:
            label = "区级部门" if c.town == DISTRICT_KEY else names_by_code.get(c.town, c.town)
            _score(groups, c.town, label, c)
    return sorted(groups.values(), key=lambda g: (g.score, -g.entries, g.label))


def total(checks: list[EntryCheck]) -> GroupScore:
    group = GroupScore("all", "全部")
    groups = {"all": group}
    for c in checks:
        _score(groups, "all", "全部", c)
    return group


def in_group(checks: list[EntryCheck], by: str, key: str) -> list[EntryCheck]:
    if by == "department":
        return [c for c in checks if str(c.department_id) == key]
    return [c for c in checks if c.town == key]
