"""Import a real district catalogue CSV (data/service_items_guangan_511602.csv, columns in
data/README.md) into a district: departments, basic items and published district-level claims.

- The file's department names can be mapped to the district's own (``read_department_map``, a
  ``source_department,department`` CSV): a catalogue borrowed from another district must not show
  that district's names. The mapped department is recorded as the basic item's 主管部门.
- Departments are found by name at the district (level 4) or created through
  catalog.services.create_department with the 统一社会信用代码 the caller supplies: a
  ``department_uscc`` column in the CSV, or a mapping (department name -> code, ``read_uscc_map``).
  A new department without one is refused with its line: the importer never makes a code up (it
  would flow into 实施编码, 电子证照标识 and the city registry as if it were real).
- The file's ``basic_code`` is kept as ``source_code``. When an imported upper-level item
  (catalog.upper) has that 基本编码 and it is a 12-character code, the district item takes it and
  points to that item (三级四同); otherwise (e.g. a pre-2019 Sichuan code like ``511A0138000000``) a
  local 基本编码 is allocated deterministically from it (province of the district + 事项类型 + 8
  digits of a hash, probing on collision) and the 三级四同 report shows the code as drift.
- An item whose name names another province (《四川省老年人优待证》 imported into Jiangsu) is recorded
  as "本地不适用" with that reason, not as a service of this district.
- Item names are kept exactly as in the file. The file has no legal basis; it stays empty.
- Each row runs in its own savepoint: a bad row is reported with its line number and reason and
  leaves nothing behind, while good rows import. Re-running is idempotent (items by source code,
  departments by USCC, claims by item and department).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select
from tqdm import tqdm

from catalog.codes import check_catalog_code, check_uscc, make_task_code
from catalog.divisions import other_province_named
from catalog.models import (
    TASK_TYPES,
    USE_LEVELS,
    CatalogItem,
    Department,
    Division,
    EntryStatus,
    EntryVersion,
    ImplementationEntry,
    UpperCatalogItem,
)
from catalog.norules import derive_depth_level, evaluate_no_contact, split_codes
from catalog.search.index import reindex_entries
from catalog.services import create_department
from core import audit
from core.auth import SYSTEM, Principal
from core.csv_input import control_problem, header_problems, read_header, records, utf8_lines
from core.errors import DomainError, Invalid
from core.types import utcnow

REQUIRED_COLUMNS = ("item_name", "item_type", "task_type_code", "department", "basic_code")
USCC_COLUMN = "department_uscc"  # optional: the department's 统一社会信用代码
# The portal's taskType numbering (data/README.md); 11 is 公共服务 in some feeds.
SOURCE_TYPE_CODES = {str(int(k)): k for k in TASK_TYPES} | {"11": "20"}
TYPE_BY_NAME = {v: k for k, v in TASK_TYPES.items()}
MAX_NAME = 200


@dataclass
class ImportReport:
    """Counts of what an import did; ``errors`` lists (line number, reason) of the rows it refused."""

    rows: int = 0
    created: int = 0  # new claims (implementation entries)
    skipped: int = 0  # rows already imported with the same data
    updated: int = 0  # rows whose item changed in the file (name/type)
    items_created: int = 0
    departments_created: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    # Rows imported with a caveat (a new department's USCC failing its check character): printed as
    # the import goes, to standard error, so the command line shows them.
    warnings: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class RowError(Exception):
    pass


def read_uscc_map(path: Path) -> dict[str, str]:
    """A department -> 统一社会信用代码 mapping from a CSV with the columns ``department,uscc``.

    Lines starting with ``#`` are comments (for provenance). Invalid naming the file and line on a
    missing value, a code that fails the shape check, or a department given two different codes.
    """
    out: dict[str, str] = {}
    for line, row in _map_rows(path, ("department", "uscc"), "部门代码对照文件应有 department 和 uscc 两列"):
        name = (row.get("department") or "").strip()
        code = (row.get("uscc") or "").strip().upper()
        if not name or not code:
            raise Invalid(f"{path.name} 第 {line} 行：部门名称和统一社会信用代码都不能为空")
        check = check_uscc(code)
        if not check.ok:
            raise Invalid(f"{path.name} 第 {line} 行：{check.message}")
        if out.get(name, code) != code:
            raise Invalid(f"{path.name} 第 {line} 行：部门“{name}”对应了两个不同的统一社会信用代码")
        out[name] = code
    return out


def read_department_map(path: Path) -> dict[str, str]:
    """A source department -> district department name mapping from a CSV with the columns
    ``source_department,department`` (``#`` lines are comments, for provenance). Invalid naming the
    file and line on an empty value or a source department mapped twice to different names."""
    out: dict[str, str] = {}
    columns = ("source_department", "department")
    for line, row in _map_rows(path, columns, "部门对照文件应有 source_department 和 department 两列"):
        source = (row.get("source_department") or "").strip()
        target = (row.get("department") or "").strip()
        if not source or not target:
            raise Invalid(f"{path.name} 第 {line} 行：来源部门和本区部门名称都不能为空")
        if len(target) > 100:
            raise Invalid(f"{path.name} 第 {line} 行：部门名称超过 100 个字符")
        if out.get(source, target) != target:
            raise Invalid(f"{path.name} 第 {line} 行：来源部门“{source}”对应了两个不同的本区部门")
        out[source] = target
    return out


def _map_rows(
    path: Path, columns: tuple[str, ...], wrong_header: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a small mapping file, ``#`` comment lines skipped; Invalid naming the file (and
    the line) for a file that is not UTF-8, a header without ``columns`` (or naming one twice) or a
    record that cannot be read."""
    rows = records(utf8_lines(path), comments=True)
    _line, header = read_header(rows, path.name)
    problems = header_problems(header, columns)
    if problems:
        raise Invalid(f"{path.name}：{wrong_header}（{'；'.join(problems)}）", {"file": [path.name]})
    for line, values, problem in rows:
        if problem:
            raise Invalid(f"{path.name} 第 {line} 行：{problem}")
        yield line, dict(zip(header, values, strict=False))


def local_catalog_code(district_code: str, task_type: str, source_code: str, salt: int = 0) -> str:
    """A 12-character 地方基本编码: province (2) + 事项类型 (2) + 8 hash digits of the source code."""
    digest = hashlib.sha256(f"{source_code}|{salt}".encode()).hexdigest()
    return f"{district_code[:2]}{task_type}{int(digest, 16) % 10**8:08d}"


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """(line number, row or None, error) for each record; line numbers are the file's (the line a
    record starts on). Invalid for a file that is not UTF-8, or a header that lacks a required column
    or names one twice (the later column would silently win)."""
    rows = records(utf8_lines(path))
    _line, header = read_header(rows, path.name)
    problems = header_problems(header, REQUIRED_COLUMNS)
    if problems:
        raise Invalid(f"{path.name}: {'；'.join(problems)}", {"file": problems})
    for line, values, problem in rows:
        if problem:
            yield line, None, problem
        elif all(not v.strip() for v in values):
            continue
        elif len(values) != len(header):
            yield line, None, f"列数应为 {len(header)}，实为 {len(values)}"
        elif control := control_problem(header, values):  # NUL: PostgreSQL refused it, SQLite stored it
            yield line, None, control
        else:
            yield line, dict(zip(header, values, strict=True)), None


def _task_type(row: dict[str, str]) -> str:
    raw = row["task_type_code"].strip()
    # ASCII digits only: isdigit() is also true for "²" (which int() cannot read) and other scripts' digits.
    by_code = SOURCE_TYPE_CODES.get(str(int(raw))) if raw.isascii() and raw.isdigit() else None
    by_name = TYPE_BY_NAME.get(row["item_type"].strip())
    if raw and by_code is None:
        raise RowError(f"事项类型代码 {raw!r} 无效")
    if by_code and by_name and by_code != by_name:
        raise RowError(f"事项类型代码 {raw} 与类型名称“{row['item_type']}”不一致")
    result = by_code or by_name
    if result is None:
        raise RowError("缺少事项类型")
    return result


class _Importer:
    """Per-import caches, so a row costs a few INSERTs and no lookups; ``journal`` undoes a bad row's
    additions to the caches when its savepoint rolls back."""

    def __init__(
        self,
        session: Session,
        district: Division,
        use_levels: str,
        actor: Principal,
        usccs: Mapping[str, str],
        names: Mapping[str, str],
    ) -> None:
        self.session = session
        self.given_usccs = usccs
        self.names = names
        self.district = district
        self.code6 = district.code[:6]
        self.use_levels = use_levels
        self.actor = actor
        depts = session.exec(
            select(Department).where(Department.division_code == district.code, Department.level == "4")
        ).all()
        self.departments: dict[str, tuple[int, str]] = {d.name: (d.id or 0, d.uscc) for d in depts}
        self.codes: dict[str, bool] = dict.fromkeys(session.exec(select(CatalogItem.code)).all(), True)
        self.items: dict[str, tuple[int, str, str, str]] = {}
        self.uncompetent: dict[int, bool] = {}  # items whose 主管部门 nobody recorded yet
        for src, id_, code, name, ttype, competent in session.execute(
            sa.select(
                col(CatalogItem.source_code),
                col(CatalogItem.id),
                col(CatalogItem.code),
                col(CatalogItem.name),
                col(CatalogItem.task_type),
                col(CatalogItem.competent_department_id),
            ).where(col(CatalogItem.source_code).is_not(None))
        ).all():
            self.items[src] = (id_, code, name, ttype)
            if competent is None:
                self.uncompetent[id_] = True
        # Upper-level 基本编码 -> upper item id (province first), to keep codes that match (三级四同).
        self.upper: dict[str, int] = {}
        for code, _level, upper_id in sorted(
            session.execute(
                sa.select(col(UpperCatalogItem.code), col(UpperCatalogItem.level), col(UpperCatalogItem.id))
            ).all(),
            key=lambda r: r[1],
        ):
            self.upper.setdefault(code, upper_id)
        self.claims: dict[tuple[int, int], bool] = dict.fromkeys(
            session.exec(select(ImplementationEntry.item_id, ImplementationEntry.department_id)).all(), True
        )
        self.seen_sources: dict[str, bool] = {}
        self.journal: list[tuple[dict[Any, Any], Any]] = []
        self.done: list[Any] = []  # rows' objects, expunged once committed to keep the session small
        self.warnings: list[str] = []  # the current row's, kept only if the row is

    def remember(self, cache: dict[Any, Any], key: Any, value: Any = True) -> None:
        cache[key] = value
        self.journal.append((cache, key))

    def undo(self) -> None:
        for cache, key in reversed(self.journal):
            cache.pop(key, None)
        self.journal.clear()

    def department(self, name: str, given: str, report: ImportReport) -> tuple[int, str]:
        """The department's (id, USCC): found by name, else created with the USCC the caller gave."""
        uscc = (given or self.given_usccs.get(name) or "").strip().upper()
        if name in self.departments:
            dept_id, known = self.departments[name]
            if uscc and uscc != known:
                raise RowError(f"实施部门“{name}”已登记统一社会信用代码 {known}，与本行的 {uscc} 不一致")
            return dept_id, known
        if not uscc:
            raise RowError(
                f"实施部门“{name}”没有统一社会信用代码：请在 CSV 的 {USCC_COLUMN} 列填写，"
                "或用 --uscc-map 提供部门与代码的对照文件"
            )
        dept = create_department(
            self.session, self.actor, name=name, uscc=uscc, level="4", division_code=self.district.code
        )
        self.done.append(dept)
        self.remember(self.departments, name, (dept.id, dept.uscc))
        report.departments_created += 1
        if dept.uscc_warning:
            # Accepted as create_department accepts it (real pre-2016 codes fail the check), but said.
            self.warnings.append(f"实施部门“{name}”的{dept.uscc_warning}（{dept.uscc}），已照常登记")
        return dept.id or 0, dept.uscc

    def item(
        self, source: str, name: str, task_type: str, dept_id: int, report: ImportReport
    ) -> tuple[int, str, bool]:
        """(item id, 基本编码, whether the file changed the existing item)."""
        known = self.items.get(source)
        if known is not None:
            item_id, code, old_name, old_type = known
            changed = (old_name, old_type) != (name, task_type)
            if changed or item_id in self.uncompetent:
                item = self.session.get(CatalogItem, item_id)
                if item is not None:
                    if changed:
                        item.name, item.task_type, item.updated_at = name, task_type, utcnow()
                    if item.competent_department_id is None:
                        item.competent_department_id = dept_id
                    self.done.append(item)
                self.uncompetent.pop(item_id, None)
                self.remember(self.items, source, (item_id, code, name, task_type))
            return item_id, code, changed
        upper_id = self.upper.get(source)
        if upper_id is not None and check_catalog_code(source).ok and source not in self.codes:
            code = source
        else:
            salt = 0
            code = local_catalog_code(self.code6, task_type, source)
            while code in self.codes:
                salt += 1
                code = local_catalog_code(self.code6, task_type, source, salt)
        levels = self.use_levels
        if task_type != "20":
            levels = ",".join(c for c in split_codes(levels) if c != "6") or "4"
        item = CatalogItem(
            code=code,
            source_code=source,
            name=name,
            task_type=task_type,
            legal_basis="",
            use_levels=levels,
            competent_department_id=dept_id,
            upper_item_id=upper_id,
        )
        self.session.add(item)
        self.session.flush()
        self.done.append(item)
        self.remember(self.codes, code)
        self.remember(self.items, source, (item.id, code, name, task_type))
        report.items_created += 1
        return item.id or 0, code, False

    def row(self, line: int, row: dict[str, str], report: ImportReport) -> None:
        name = row["item_name"]
        if not name.strip():
            raise RowError("事项名称为空")
        if len(name) > MAX_NAME:
            raise RowError(f"事项名称超过 {MAX_NAME} 个字符")
        dept_name = row["department"].strip()
        if not dept_name:
            raise RowError("实施部门为空")
        dept_name = self.names.get(dept_name, dept_name)
        if len(dept_name) > 100:
            raise RowError("实施部门名称超过 100 个字符")
        source = row["basic_code"].strip()
        if not source:
            raise RowError("基本编码（basic_code）为空")
        if len(source) > 60:
            raise RowError("基本编码（basic_code）超过 60 个字符")
        if source in self.seen_sources:
            raise RowError(f"基本编码 {source} 在文件中重复")
        task_type = _task_type(row)
        self.remember(self.seen_sources, source)

        dept_id, uscc = self.department(dept_name, row.get(USCC_COLUMN) or "", report)
        item_id, code, changed = self.item(source, name, task_type, dept_id, report)
        if (item_id, dept_id) in self.claims:
            if changed:
                report.updated += 1
            else:
                report.skipped += 1
            return
        entry = ImplementationEntry(
            task_code=make_task_code(uscc, "4", code),
            item_id=item_id,
            department_id=dept_id,
            level="4",
            division_code=self.district.code,
            name=name,
            task_type=task_type,
            legal_basis="",
            catalog_code=code,
            status=EntryStatus.PUBLISHED.value,
            published_at=utcnow(),
        )
        province = other_province_named(name, self.code6)
        if province is not None:
            entry.applicable = False
            entry.not_applicable_reason = (
                f"本地不适用：事项名称指向{province}（“{name}”），不是{self.district.name}的政务服务事项"
            )
        # What the rules derive, as on every save (catalog.entries._derive): a new entry has no
        # materials, and no licence link can be checked before it exists.
        entry.no_contact_class = evaluate_no_contact(entry, []).klass
        entry.depth_level = derive_depth_level(entry.online_depth, entry.visits)
        self.session.add(entry)
        self.session.flush()
        snapshot = {
            c: getattr(entry, c) for c in ("task_code", "name", "task_type", "catalog_code", "status")
        }
        snapshot |= {"source_code": source, "source_line": line, "materials": [], "fees": []}
        version = EntryVersion(
            entry_id=entry.id or 0,
            version=1,
            status=entry.status,
            snapshot=snapshot,
            actor_id=self.actor.user_id,
        )
        self.session.add(version)
        self.done += [entry, version]
        self.remember(self.claims, (item_id, dept_id))
        report.created += 1


def import_items_csv(
    session: Session,
    path: Path,
    district_code: str,
    progress: bool = True,
    *,
    use_levels: str = "4",
    actor: Principal = SYSTEM,
    department_usccs: Mapping[str, str] | None = None,
    department_names: Mapping[str, str] | None = None,
) -> ImportReport:
    """Import ``path`` into the district ``district_code`` (6 digits, e.g. 321203). Flushes only.

    The district's county division must be loaded first (``flask catalog load-divisions``).
    ``use_levels`` are the 行使层级 given to new basic items (level 6 only for 公共服务 items).
    A new department needs its 统一社会信用代码: the row's ``department_uscc`` column, else
    ``department_usccs`` (department name -> code, see ``read_uscc_map``); without one the row is
    refused. Each new department is created (and audited) by ``create_department``.
    ``department_names`` maps the file's department names to the district's (``read_department_map``);
    the USCCs are then looked up by the district's name.
    One audit row summarises the import.
    """
    if not (len(district_code) == 6 and district_code.isdigit()):
        raise Invalid("区县代码应为 6 位数字，如 321203", {"district": [district_code]})
    levels = ",".join(split_codes(use_levels))
    if not levels or any(c not in USE_LEVELS for c in split_codes(levels)):
        raise Invalid("行使层级应为以逗号分隔的 1-6，如 4,5", {"use_levels": [use_levels]})
    district = session.get(Division, district_code + "000000")
    if district is None:
        raise Invalid(
            f"区县 {district_code} 的行政区划尚未导入，请先运行 flask catalog load-divisions",
            {"district": [district_code]},
        )
    if not path.is_file():
        raise Invalid(f"文件不存在：{path}", {"file": [str(path)]})
    report = ImportReport()
    importer = _Importer(session, district, levels, actor, department_usccs or {}, department_names or {})
    created: list[int] = []
    rows = list(_rows(path))
    for line, row, problem in tqdm(rows, desc="导入事项", unit="行", disable=not progress):
        report.rows += 1
        if problem is not None or row is None:
            report.errors.append((line, problem or "无法解析"))
            continue
        counts = (
            report.created,
            report.skipped,
            report.updated,
            report.items_created,
            report.departments_created,
        )
        savepoint = session.begin_nested()
        try:
            importer.row(line, row, report)
            session.flush()
            savepoint.commit()
            created.extend(o.id for o in importer.done if isinstance(o, ImplementationEntry) and o.id)
            for obj in importer.done:
                if obj in session:
                    session.expunge(obj)
            importer.done.clear()
            importer.journal.clear()
            for warning in importer.warnings:
                report.warnings.append((line, warning))
                tqdm.write(f"第 {line} 行：警告：{warning}", file=sys.stderr)
            importer.warnings.clear()
        except (RowError, DomainError, sa.exc.SQLAlchemyError) as exc:
            savepoint.rollback()
            importer.done.clear()
            importer.warnings.clear()
            reason = (
                str(exc)
                if not isinstance(exc, sa.exc.SQLAlchemyError)
                else f"数据库拒绝：{exc.__class__.__name__}"
            )
            report.errors.append((line, reason))
            importer.undo()
            (
                report.created,
                report.skipped,
                report.updated,
                report.items_created,
                report.departments_created,
            ) = counts
    # The new published entries become searchable in this transaction (one batch, not per row).
    reindex_entries(session, created)
    audit.record(
        session,
        actor=actor,
        action="catalog.import",
        entity_type="catalog_import",
        entity_id=path.name,
        new={"district": district_code, **_summary(report)},
    )
    return report


def _summary(report: ImportReport) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "created": report.created,
        "skipped": report.skipped,
        "updated": report.updated,
        "items_created": report.items_created,
        "departments_created": report.departments_created,
        "errors": len(report.errors),
    }
