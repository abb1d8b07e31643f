"""The upper levels of 三级四同: a province (省级) or city (市级) basic catalogue and the province's
不见面审批 standard list, imported as given, and the district basic items' links to them.

File format (UTF-8 CSV, one header row; lines starting with ``#`` before the header are the file's
provenance, kept with every row and shown on the reports). Columns of ``flask catalog import-basic``:

==========  ========  ==================================================================
column      required  meaning
==========  ========  ==================================================================
基本编码     yes       the upper level's 基本编码, kept exactly as given (letters, digits, ``-``)
名称         yes       事项名称
事项类型     yes       the 2-digit code (``01``…``20``, ``1`` is read as ``01``) or its name (行政许可…)
设定依据     no        legal basis; empty = the file gives none (NULL, not "")
行使层级     no        use levels, e.g. ``2,3,4`` (``、`` and spaces also separate); empty = not given
主管部门     no        the competent department as the upper level names it
==========  ========  ==================================================================

``flask catalog import-no-contact-list`` takes 基本编码 and 名称 (required) and 事项类型 (optional).

A file with any bad row is refused as a whole: every bad row is reported with its line number and
nothing is written. Re-importing a file updates the rows by (level, 基本编码); rows missing from a
newer file are kept (district items may point to them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog import permissions
from catalog.codes import check_catalog_code
from catalog.inputs import _require
from catalog.models import (
    TASK_TYPES,
    UPPER_LEVELS,
    USE_LEVELS,
    CatalogItem,
    EntryStatus,
    ImplementationEntry,
    NoContactStandardItem,
    UpperCatalogItem,
)
from core import audit
from core.auth import Principal
from core.csv_input import control_problem, header_problems, read_header, records, utf8_lines
from core.errors import Invalid
from core.text_rules import FIELD_MESSAGE, IN_TEXT
from core.types import utcnow

CODE_RE = re.compile(r"^[0-9A-Za-z-]{1,60}$")
LEVEL_SPLIT_RE = re.compile(r"[,，、;；\s]+")
TYPE_BY_NAME = {v: k for k, v in TASK_TYPES.items()}
BASIC_REQUIRED = ("基本编码", "名称", "事项类型")
BASIC_OPTIONAL = ("设定依据", "行使层级", "主管部门")
NO_CONTACT_REQUIRED = ("基本编码", "名称")
NO_CONTACT_OPTIONAL = ("事项类型",)
MAX_ERRORS_SHOWN = 20
MAX_PROVENANCE = 1000  # upper_catalog_item.provenance
# Which upper level a district item is checked against when both have the code: the province
# defines the 三级四同 list (standards §1.5), the city follows it.
LEVEL_PREFERENCE = ("2", "3")


@dataclass
class UpperImportReport:
    """What an import did. ``linked`` counts district basic items newly pointed to an upper item."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    linked: int = 0
    provenance: str = ""
    errors: list[tuple[int, str]] = field(default_factory=list)


def _shown(text: str) -> str:
    """``text`` with its control characters written as escapes, for a message about it."""
    return IN_TEXT.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else "\ufffd", text)


def _read(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[str, Iterator[tuple[int, dict[str, str]]]]:
    """(provenance from the leading ``#`` lines, (line number, row) for each non-empty record).

    Read through core.csv_input, the one reader of operators' files: UTF-8 only (a GBK or UTF-16 file
    is refused naming its first unreadable line), lines numbered as an editor shows them, a column
    named twice refused, a field over the csv limit or a quote never closed reported on its line.
    A value or provenance line holding a control character is refused: PostgreSQL cannot store NUL.
    Invalid naming the file for an unreadable file or a bad header."""
    if not path.is_file():
        raise Invalid(f"文件不存在：{path}", {"file": [str(path)]})
    lines = list(utf8_lines(path))
    notes: list[str] = []
    for number, line in enumerate(lines, 1):
        if line.startswith("#"):
            if IN_TEXT.search(line):
                message = f"{path.name} 第 {number} 行（来源注释）：{FIELD_MESSAGE}"
                raise Invalid(message, {"provenance": [FIELD_MESSAGE]})
            notes.append(line[1:].strip())
        elif line.strip():
            break
    in_file = records(lines, comments=True)
    header_line, header = read_header(in_file, path.name)
    header = [_shown(h) for h in header]
    problems = header_problems(header, required, required + optional)
    if problems:
        raise Invalid(
            f"{path.name} 第 {header_line} 行（表头）：{'；'.join(problems)}（必需列：{'、'.join(required)}；"
            f"可选列：{'、'.join(optional)}）",
            {"file": problems},
        )

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for line, values, problem in in_file:
            if problem:
                yield line, {"__error__": problem}
            elif len(values) != len(header):
                yield line, {"__error__": f"列数应为 {len(header)}，实为 {len(values)}"}
            elif bad := control_problem(header, values):
                yield line, {"__error__": bad}
            else:
                yield line, dict(zip(header, values, strict=True))

    return "\n".join(n for n in notes if n), rows()


def _code(raw: str, problems: list[str]) -> str:
    code = raw.strip()
    if not code:
        problems.append("基本编码为空")
    elif not CODE_RE.match(code):
        hint = "（含全角字符，请改为半角）" if any("\uff01" <= c <= "\uff5e" for c in code) else ""
        problems.append(f"基本编码“{code}”只能由字母、数字和“-”组成，最长 60 位{hint}")
    return code


def _task_type(raw: str, problems: list[str], *, required: bool) -> str | None:
    value = raw.strip()
    if not value:
        if required:
            problems.append("事项类型为空")
        return None
    if value.isascii() and value.isdigit() and f"{int(value):02d}" in TASK_TYPES:
        return f"{int(value):02d}"
    if value in TYPE_BY_NAME:
        return TYPE_BY_NAME[value]
    problems.append(
        f"事项类型“{value}”无效；可填代码或名称：" + "、".join(f"{k} {v}" for k, v in TASK_TYPES.items())
    )
    return None


def _name(raw: str, problems: list[str]) -> str:
    name = raw.strip()
    if not name:
        problems.append("名称为空")
    elif len(name) > 200:
        problems.append("名称超过 200 个字符")
    return name


def _levels(raw: str, problems: list[str]) -> str | None:
    value = raw.strip()
    if not value:
        return None
    codes = [c for c in LEVEL_SPLIT_RE.split(value) if c]
    bad = [c for c in codes if c not in USE_LEVELS]
    if bad:
        problems.append(f"行使层级“{value}”无效；应为 1-6 的数字，如 2,3,4")
        return None
    return ",".join(sorted(set(codes)))


def _provenance(file_notes: str, given: str | None, path: Path) -> str:
    if given and IN_TEXT.search(given):
        raise Invalid(f"--provenance 来源说明{FIELD_MESSAGE}", {"provenance": [FIELD_MESSAGE]})
    text = "\n".join(t for t in ((given or "").strip(), file_notes) if t)
    if len(text) > MAX_PROVENANCE:
        raise Invalid(
            f"{path.name}：来源说明共 {len(text)} 个字符，超过 {MAX_PROVENANCE} 个字符的上限，请精简",
            {"provenance": [f"不超过 {MAX_PROVENANCE} 个字符"]},
        )
    if not text:
        raise Invalid(
            f"{path.name}：请说明文件来源（用 --provenance 参数，或在文件开头以 # 注释写明），"
            "以免把来历不明的数据当作官方目录",
            {"provenance": ["必填"]},
        )
    return text


def _refuse(path: Path, errors: list[tuple[int, str]]) -> None:
    if not errors:
        return
    shown = "；".join(f"第 {line} 行：{msg}" for line, msg in errors[:MAX_ERRORS_SHOWN])
    more = f"；另有 {len(errors) - MAX_ERRORS_SHOWN} 行有误" if len(errors) > MAX_ERRORS_SHOWN else ""
    raise Invalid(
        f"{path.name} 有 {len(errors)} 行有误，未导入任何数据：{shown}{more}",
        {"lines": [f"第 {line} 行：{msg}" for line, msg in errors]},
    )


def _parse_rows(
    path: Path,
    records: Iterable[tuple[int, dict[str, str]]],
    report: UpperImportReport,
    values_of: Callable[[dict[str, str], list[str]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The rows of an upper-level file as column values (``code`` kept as given, ``source_line``), each
    bad row in ``report.errors`` with its line; Invalid naming every bad line (nothing is written) when
    there is one, or when the file has no data row. ``values_of`` reads the file's own columns."""
    parsed: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, row in records:
        report.rows += 1
        if "__error__" in row:
            report.errors.append((line, row["__error__"]))
            continue
        problems: list[str] = []
        code = _code(row["基本编码"], problems)
        if code and code in seen:
            problems.append(f"基本编码 {code} 与第 {seen[code]} 行重复")
        values = {"code": code, **values_of(row, problems), "source_line": line}
        if problems:
            report.errors.append((line, "；".join(problems)))
            continue
        seen[code] = line
        parsed.append(values)
    if not parsed and not report.errors:
        raise Invalid(f"{path.name}：文件没有数据行", {"file": [path.name]})
    _refuse(path, report.errors)
    return parsed


def _upsert(
    session: Session,
    path: Path,
    report: UpperImportReport,
    parsed: list[dict[str, Any]],
    existing: dict[str, Any],
    make: Callable[..., Any],
    compared: tuple[str, ...],
) -> None:
    """Create the rows ``existing`` (code -> row) lacks, update the others; ``compared`` are the fields
    whose change counts a row as updated rather than unchanged."""
    now = utcnow()
    for values in parsed:
        common = {**values, "source_file": path.name[:200], "provenance": report.provenance}
        found = existing.get(values["code"])
        if found is None:
            session.add(make(imported_at=now, **common))
            report.created += 1
            continue
        if all(getattr(found, k) == values[k] for k in compared):
            report.unchanged += 1
        else:
            report.updated += 1
        for key, value in common.items():
            setattr(found, key, value)
        found.imported_at = now
    session.flush()


def import_basic_catalogue(
    session: Session, actor: Principal, path: Path, *, level: str, provenance: str | None = None
) -> UpperImportReport:
    """Import a province (``level`` "2") or city ("3") basic catalogue CSV (columns in the module
    docstring), keeping each 基本编码 exactly as given; then point the district basic items whose
    基本编码 or source code equals an upper code to that upper item (``link_district_items``).

    Administrators only. Invalid listing every bad row with its line number, and nothing written, if
    any row is bad. Flushes only; one audit row summarises the import.
    """
    _require(permissions.can_manage_catalogue(actor), "仅区级管理员可以导入上级基本目录")
    if level not in UPPER_LEVELS:
        raise Invalid("上级目录层级应为 province（省级）或 city（市级）", {"level": [str(level)]})
    notes, records = _read(path, BASIC_REQUIRED, BASIC_OPTIONAL)
    report = UpperImportReport(provenance=_provenance(notes, provenance, path))

    def values_of(row: dict[str, str], problems: list[str]) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": _name(row["名称"], problems),
            "task_type": _task_type(row["事项类型"], problems, required=True),
            "legal_basis": (row.get("设定依据") or "").strip() or None,
            "use_levels": _levels(row.get("行使层级") or "", problems),
            "competent_department": (row.get("主管部门") or "").strip() or None,
        }
        if values["legal_basis"] and len(values["legal_basis"]) > 20000:
            problems.append("设定依据超过 20000 个字符")
        if values["competent_department"] and len(values["competent_department"]) > 100:
            problems.append("主管部门超过 100 个字符")
        return values

    parsed = _parse_rows(path, records, report, values_of)
    existing = {
        u.code: u for u in session.exec(select(UpperCatalogItem).where(UpperCatalogItem.level == level))
    }
    _upsert(session, path, report, parsed, existing, lambda **row: UpperCatalogItem(level=level, **row),
            ("name", "task_type", "legal_basis", "use_levels", "competent_department"))
    report.linked = link_district_items(session)
    audit.record(
        session,
        actor=actor,
        action="upper_catalog.import",
        entity_type="upper_catalog",
        entity_id=f"{UPPER_LEVELS[level]}:{path.name}",
        new={
            "level": level,
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "linked": report.linked,
            "provenance": report.provenance,
        },
    )
    return report


def upper_code_index(session: Session) -> dict[str, int]:
    """基本编码 -> the upper item a district item with that code points to (province first)."""
    index: dict[str, int] = {}
    rows = session.execute(
        sa.select(col(UpperCatalogItem.code), col(UpperCatalogItem.level), col(UpperCatalogItem.id))
    ).all()
    for code, _level, item_id in sorted(rows, key=lambda r: LEVEL_PREFERENCE.index(r[1])):
        index.setdefault(code, item_id)
    return index


def link_district_items(session: Session) -> int:
    """Point every district basic item to the upper item with its 基本编码 (or, failing that, its
    source code from an imported file), the province's when both levels have it. Returns how many
    links were set or changed. Items with no upper counterpart keep their link as it is (None)."""
    index = upper_code_index(session)
    if not index:
        return 0
    changed = 0
    for item in session.exec(select(CatalogItem)):
        target = index.get(item.code) or (index.get(item.source_code) if item.source_code else None)
        if target is not None and target != item.upper_item_id:
            item.upper_item_id = target
            changed += 1
    session.flush()
    return changed


def inherited_values(session: Session, item: CatalogItem) -> dict[str, Any]:
    """The 四同 values an entry of ``item`` carries: the upper item's name, type and basis when the
    item points to one (its code too when it is a 12-character 基本编码, the only kind a 实施编码
    can hold), else the district item's own."""
    values: dict[str, Any] = {
        "name": item.name,
        "task_type": item.task_type,
        "legal_basis": item.legal_basis,
        "catalog_code": item.code,
    }
    upper = session.get(UpperCatalogItem, item.upper_item_id) if item.upper_item_id else None
    if upper is not None:
        values.update(name=upper.name, task_type=upper.task_type, legal_basis=upper.legal_basis or "")
        if check_catalog_code(upper.code).ok:
            values["catalog_code"] = upper.code
    return values


# --------------------------------------------------------------------------- 不见面 standard list


def import_no_contact_list(
    session: Session, actor: Principal, path: Path, *, provenance: str | None = None
) -> UpperImportReport:
    """Import the province's 不见面审批 standard list (基本编码 as given, 名称, optional 事项类型).
    Same rules as ``import_basic_catalogue``: administrators only, all or nothing, audited."""
    _require(permissions.can_manage_catalogue(actor), "仅区级管理员可以导入不见面审批标准清单")
    notes, records = _read(path, NO_CONTACT_REQUIRED, NO_CONTACT_OPTIONAL)
    report = UpperImportReport(provenance=_provenance(notes, provenance, path))

    def values_of(row: dict[str, str], problems: list[str]) -> dict[str, Any]:
        return {
            "name": _name(row["名称"], problems),
            "task_type": _task_type(row.get("事项类型") or "", problems, required=False),
        }

    parsed = _parse_rows(path, records, report, values_of)
    existing = {n.code: n for n in session.exec(select(NoContactStandardItem))}
    _upsert(session, path, report, parsed, existing, NoContactStandardItem, ("name", "task_type"))
    audit.record(
        session,
        actor=actor,
        action="no_contact_list.import",
        entity_type="no_contact_standard",
        entity_id=path.name,
        new={
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "provenance": report.provenance,
        },
    )
    return report


@dataclass(frozen=True)
class NoContactGap:
    """A published entry whose item is on the province's 不见面 list but which is not 不见面 here."""

    entry_id: int
    task_code: str
    name: str
    department_id: int
    division_code: str
    list_code: str
    list_name: str


def no_contact_gaps(session: Session) -> list[NoContactGap]:
    """Published, applicable entries on the province's 不见面 standard list that are not 不见面 here.

    An entry is on the list when its 基本编码, its basic item's code or source code, or its basic
    item's upper-level code is a listed 基本编码."""
    listed = {n.code: n.name for n in session.exec(select(NoContactStandardItem))}
    if not listed:
        return []
    upper_codes = dict(session.execute(sa.select(col(UpperCatalogItem.id), col(UpperCatalogItem.code))).all())
    stmt = (
        select(ImplementationEntry, CatalogItem)
        .join(CatalogItem, col(CatalogItem.id) == ImplementationEntry.item_id)
        .where(
            ImplementationEntry.status == EntryStatus.PUBLISHED.value,
            col(ImplementationEntry.applicable).is_(True),
            col(ImplementationEntry.no_contact).is_(False),
        )
        .order_by(col(ImplementationEntry.id))
    )
    gaps = []
    for entry, item in session.exec(stmt):
        candidates = (
            entry.catalog_code,
            item.code,
            item.source_code,
            upper_codes.get(item.upper_item_id or 0),
        )
        code = next((c for c in candidates if c and c in listed), None)
        if code is None:
            continue
        gaps.append(
            NoContactGap(
                entry.id or 0,
                entry.task_code,
                entry.name,
                entry.department_id,
                entry.division_code,
                code,
                listed[code],
            )
        )
    return gaps


def no_contact_list_summary(session: Session) -> dict[str, Any]:
    """How many items the imported list holds and where it came from (for the report's header)."""
    rows = session.execute(
        sa.select(
            col(NoContactStandardItem.source_file),
            col(NoContactStandardItem.provenance),
            sa.func.count(),
            sa.func.max(col(NoContactStandardItem.imported_at)),
        ).group_by(col(NoContactStandardItem.source_file), col(NoContactStandardItem.provenance))
    ).all()
    return {
        "items": sum(r[2] for r in rows),
        "sources": [
            {"file": f, "provenance": p, "items": n, "imported_at": t.isoformat() if t else None}
            for f, p, n, t in rows
        ],
    }
