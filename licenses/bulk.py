"""Bulk issue: CSV import of historical licences (synthetic licences for the demo and the benchmarks are
generated in demo/synthetic_licences.py and go through the same ``run_bulk``).

Rows go through the same validation as a single issue (``issuing.prepare_licence``); the writes
are set-based (one multi-row INSERT per chunk for licences and one for their outbox rows) and the
chunk gets one audit row naming the source and the id range, so 140k licences take seconds.
Re-running an import is harmless: a row without a 流水号 gets one derived from its type, issuer and
证照编号, so the same row always maps to the same identifier and is skipped the second time. Two rows
of one file that map to one identifier (the same 证照编号 in one year, or the same 流水号) are not a
re-run: the second is reported with both lines.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, col, select

from catalog.models import Department
from core.audit import record
from core.auth import Principal
from core.csv_input import check_utf8, header_problems, read_header, records, utf8_lines
from core.db import Database, table_of
from core.errors import Forbidden, Invalid
from core.input_guard import FIELD_MESSAGE, IN_TEXT, json_strings  # the API's own rule, not a copy
from core.types import utcnow
from licenses import recon_state
from licenses.areas import AreaCodes
from licenses.grants import require_bulk_rights
from licenses.identifiers import ALNUM36, IdentifierError
from licenses.issuing import (
    choose_service,
    licence_values,
    numbers_in_use,
    prepare_licence,
    producing_services,
)
from licenses.models import Licence, LicenceOutbox, LicenceType
from licenses.outbox import outbox_row
from licenses.signing import KeyStore
from licenses.verification import ensure_signing_key

REQUIRED_COLUMNS = ("type_code", "holder_name", "holder_code")
CSV_COLUMNS = [
    "type_code",
    "holder_name",
    "holder_code",
    "number",
    "issue_date",
    "valid_from",
    "valid_to",
    "area_code",
    "serial",
    "task_code",
    "face",
]
ROW_PROBLEM = "__problem__"  # a row read_csv could not take as it is: the reason, for bulk_issue to report
INSERT_TRIES = 3  # inserts of one chunk that lost a race to a concurrent writer, before giving the chunk up
RACE_LOST = "本批写入时反复与同时进行的颁发或导入冲突，本行未导入，请稍后重新运行导入（已导入的行会被跳过）"


@dataclass
class BulkResult:
    inserted: int = 0
    skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    first_id: int | None = None
    last_id: int | None = None

    def merge(self, other: BulkResult) -> None:
        self.inserted += other.inserted
        self.skipped += other.skipped
        self.errors.extend(other.errors)
        if other.first_id is not None and self.first_id is None:
            self.first_id = other.first_id
        if other.last_id is not None:
            self.last_id = other.last_id


@dataclass
class ImportRun:
    """What one import keeps from chunk to chunk (run_bulk makes one; a lone bulk_issue call its own)."""

    areas: AreaCodes = field(default_factory=AreaCodes)  # the 管辖属地 lookups, one query per city
    lines: dict[str, int] = field(default_factory=dict)  # identifier -> the line of the row that gave it


def derived_serial(type_code: str, issuer_code: str, number: str, year: int) -> str:
    """A deterministic 流水号 for a row that has a 证照编号 but no serial (idempotent re-imports)."""
    digest = int.from_bytes(
        hashlib.sha256(f"{type_code}|{issuer_code}|{number}".encode()).digest()[:10], "big"
    )
    chars = []
    for _ in range(12):
        digest, r = divmod(digest, 36)
        chars.append(ALNUM36[r])
    return f"{year:04d}" + "".join(chars)


def _describe(exc: Invalid) -> str:
    parts = [f"{k}: {'；'.join(v) if isinstance(v, list) else v}" for k, v in (exc.details or {}).items()]
    return "；".join(parts) or exc.message


def existing_identifiers(session: Session, identifiers: list[str]) -> set[str]:
    """Which of these identifiers are already registered (one array parameter on PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            sa.text("SELECT identifier FROM licence WHERE identifier = ANY(:ids)"), {"ids": identifiers}
        ).scalars()
        return set(rows)
    found: set[str] = set()
    for start in range(0, len(identifiers), 5000):  # SQLite caps the number of bound parameters
        part = identifiers[start : start + 5000]
        found.update(session.exec(select(Licence.identifier).where(col(Licence.identifier).in_(part))).all())
    return found


def bulk_issue(
    session: Session,
    actor: Principal,
    dept: Department,
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    source: str,
    default_area: str = "321203",
    on: date | None = None,
    run: ImportRun | None = None,
) -> BulkResult:
    """Validate and insert one chunk of (line number, row) pairs for ``dept``; flushes, never commits.

    Bad rows are reported with their line and reason and left out; good rows are inserted with their
    outbox rows; rows whose identifier already exists are counted as skipped. ``run`` carries what
    the earlier chunks of the same import saw (a row repeating one of an earlier chunk is reported).
    """
    run = run or ImportRun()
    area_rule = run.areas.rule(session)
    result = BulkResult()
    types: dict[str, LicenceType | None] = {}
    refused: dict[str, str | None] = {}  # type code -> why the actor may not import it (None: may)
    producing: dict[str, list[str]] = {}  # type code -> the department's services producing it
    prepared: list[tuple[int, dict[str, Any]]] = []
    now = utcnow()
    for line, row in rows:
        if ROW_PROBLEM in row:
            result.errors.append((line, str(row[ROW_PROBLEM])))
            continue
        code = str(row.get("type_code") or "").strip()
        if code not in types:
            types[code] = session.exec(select(LicenceType).where(LicenceType.code == code)).first()
        lt = types[code]
        if lt is None:
            result.errors.append((line, f"type_code: 未知的证照类型代码 {code!r}"))
            continue
        if code not in refused:
            try:
                require_bulk_rights(session, actor, dept.id or 0, code)
                refused[code] = None
            except Forbidden as exc:
                refused[code] = exc.message
        if refused[code]:
            result.errors.append((line, f"type_code: {refused[code]}"))
            continue
        data = {k: v for k, v in row.items() if k != "type_code" and v not in (None, "")}
        try:
            inp = prepare_licence(lt, data, default_area=default_area, on=on, area_rule=area_rule)
            if code not in producing:
                producing[code] = producing_services(session, lt, dept)
            inp.task_code = choose_service(producing[code], inp.task_code)
            serial = inp.serial or (
                derived_serial(lt.code, dept.uscc, inp.number, inp.issue_date.year) if inp.number else None
            )
            values = licence_values(lt, dept, inp, serial=serial, created_by=actor.user_id, now=now)
        except Invalid as exc:
            result.errors.append((line, _describe(exc)))
            continue
        except IdentifierError as exc:
            result.errors.append((line, f"serial: {exc}"))
            continue
        first = run.lines.setdefault(values["identifier"], line)
        if first != line:
            # Not a re-run of the same row (that one is in the database and skipped below): the file
            # holds the licence twice, and the second row's data would be silently dropped.
            result.errors.append((line, _repeated(inp.serial, values, first)))
            continue
        prepared.append((line, values))
    fresh = _sort_out(session, dept, prepared, result)
    ids: list[int] = []
    for attempt in range(1, INSERT_TRIES + 1):
        if not fresh:
            return result
        try:
            with session.begin_nested():
                ids = _insert_licences(session, [values for _line, values in fresh])
            break
        except (IntegrityError, OperationalError) as exc:
            deadlock = _deadlock(exc)
            if isinstance(exc, OperationalError) and not deadlock:
                raise
            if attempt == INSERT_TRIES:
                result.errors.extend((line, RACE_LOST) for line, _values in fresh)
                return result
            # A concurrent import or issue committed one of these identifiers or 证照编号 after they
            # were checked above (the savepoint undid this chunk's insert, nothing else): check again,
            # now seeing its rows, and insert the rest; a row it took is skipped or reported just as
            # if it had been there before the import began.
            before = len(fresh)
            fresh = _sort_out(session, dept, fresh, result)
            if len(fresh) == before and not deadlock:
                raise  # no row was taken meanwhile: not a race but a fault of this import
    fresh_values = [values for _line, values in fresh]
    outbox = table_of(LicenceOutbox)
    outbox_rows = [outbox_row(SimpleNamespace(**v), "issue") for v in fresh_values]
    session.execute(sa.insert(outbox), outbox_rows)
    recon_state.note_changes(session, [recon_state.Change.of_outbox(r) for r in outbox_rows])
    result.inserted = len(fresh_values)
    result.first_id, result.last_id = min(ids), max(ids)
    record(
        session,
        actor=actor,
        action="licence.bulk_issue",
        entity_type="licence_batch",
        entity_id=f"{result.first_id}-{result.last_id}",
        new={
            "source": source,
            "count": result.inserted,
            "skipped": result.skipped,
            "errors": len(result.errors),
            "department": dept.uscc,
        },
    )
    return result


def _repeated(serial: str | None, values: Mapping[str, Any], first: int) -> str:
    """Why a row that maps to the identifier of the earlier row ``first`` is refused."""
    if serial is not None:
        return f"serial: 流水号 {serial} 与第 {first} 行的流水号重复"
    return (
        f"number: 证照编号 {values['number']} 与第 {first} 行的证照编号重复"
        f"（同一年度颁发，将生成同一电子证照标识 {values['identifier']}）"
    )


def _sort_out(
    session: Session,
    dept: Department,
    rows: list[tuple[int, dict[str, Any]]],
    result: BulkResult,
) -> list[tuple[int, dict[str, Any]]]:
    """The rows still to insert: those whose identifier is registered are counted as skipped (a re-run),
    those whose 证照编号 a live licence holds are reported. One live licence per type, department and
    证照编号 (uq_licence_number): inserted, such a row would fail the whole chunk with an
    IntegrityError. So is a row repeating the number of an earlier one."""
    if not rows:
        return []
    existing = existing_identifiers(session, [v["identifier"] for _, v in rows])
    new = [(line, v) for line, v in rows if v["identifier"] not in existing]
    result.skipped += len(rows) - len(new)
    held: dict[tuple[int, str], int | None] = dict.fromkeys(
        numbers_in_use(session, dept.id or 0, [(v["type_id"], v["number"]) for _, v in new])
    )
    fresh = []
    for line, values in new:
        key = (values["type_id"], values["number"])
        if key in held:
            first = held[key]
            where = "已被本部门另一张同类证照使用" if first is None else f"与第 {first} 行的证照编号重复"
            result.errors.append((line, f"number: 证照编号 {values['number']} {where}"))
            continue
        held[key] = line
        fresh.append((line, values))
    return fresh


def _deadlock(exc: DBAPIError) -> bool:
    """PostgreSQL chose this transaction to break a deadlock: two imports inserting the same numbers
    in different orders each wait for the other's row (SQLSTATE 40P01). Rolled back to the savepoint,
    the other goes on, and the retry then meets its committed rows as an IntegrityError would."""
    return getattr(exc.orig, "sqlstate", None) == "40P01"


def _insert_licences(session: Session, fresh: list[dict[str, Any]]) -> list[int]:
    """Insert the licence rows (set-based), giving each its ``id``; the ids."""
    table = table_of(Licence)
    if session.get_bind().dialect.name == "postgresql":
        # Ids from the sequence, then a plain executemany (psycopg pipelines it): a multi-row
        # INSERT ... RETURNING makes psycopg parse huge statements on the client, ~10x slower.
        ids = list(
            session.execute(
                sa.text(
                    "SELECT nextval(pg_get_serial_sequence('licence', 'id')) FROM generate_series(1, :n)"
                ),
                {"n": len(fresh)},
            ).scalars()
        )
        for values, new_id in zip(fresh, ids, strict=True):
            values["id"] = new_id
        session.execute(sa.insert(table), fresh)
    else:
        ids = list(
            session.execute(
                sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), fresh
            ).scalars()
        )
        for values, new_id in zip(fresh, ids, strict=True):
            values["id"] = new_id
    return ids


def read_csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of an import file with the line each starts on (header = line 1). ``face`` is a JSON object.

    The whole file is read once first: one that is not UTF-8 is refused (Invalid naming its line)
    before a chunk is written, as is a header without the required columns or with a column twice.
    A row that cannot be taken as it is comes as ``{ROW_PROBLEM: reason}``, reported with its line by
    ``bulk_issue`` and left out like any bad row: one the csv module cannot read (an unclosed quote, a
    field over its length limit), a value with a character the API refuses (core.input_guard: NUL and
    other controls, lone surrogates; PostgreSQL refuses NUL in text, and a failed INSERT would lose
    the chunk's good rows with it), or a ``face`` that is not JSON.
    """
    check_utf8(path)
    rows = records(utf8_lines(path))
    header_line, header = read_header(rows, path.name)
    problems = header_problems(header, REQUIRED_COLUMNS)
    if problems:
        raise Invalid(f"CSV 第 {header_line} 行（表头）：{'；'.join(problems)}", {"columns": problems})
    known = set(CSV_COLUMNS)
    for line, values, problem in rows:
        if problem:
            yield line, {ROW_PROBLEM: problem}
            continue
        # Like csv.DictReader: missing trailing values are absent, values beyond the header ignored;
        # columns the import does not know are dropped.
        data: dict[str, Any] = {k: v.strip() for k, v in zip(header, values, strict=False) if k in known}
        problem = _parse_face(data)
        if problem is None:
            # Checked after the face is parsed: a JSON escape (\u0000) decodes to a character that the
            # file did not hold as it is.
            refused = [
                name
                for name, value in data.items()
                if any(IN_TEXT.search(text) for _where, text in json_strings(value, name))
            ]
            if refused:
                problem = f"{'、'.join(refused)}：{FIELD_MESSAGE}"
        yield line, ({ROW_PROBLEM: problem} if problem else data)


def _parse_face(data: dict[str, Any]) -> str | None:
    """Replace the row's ``face`` text by the JSON it holds; why it cannot be, or None."""
    face = data.get("face")
    if not face:
        return None
    try:
        data["face"] = json.loads(face)
    except json.JSONDecodeError as exc:
        return f"face：照面信息不是有效的 JSON（第 {exc.pos + 1} 个字符处无法解析）"
    except RecursionError:
        return "face：照面信息不是有效的 JSON（嵌套过深）"
    return None


def chunks(
    items: Iterable[tuple[int, Mapping[str, Any]]], size: int
) -> Iterator[list[tuple[int, Mapping[str, Any]]]]:
    batch: list[tuple[int, Mapping[str, Any]]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_bulk(
    db: Database,
    actor: Principal,
    dept_id: int,
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    source: str,
    chunk_size: int = 5000,
    default_area: str = "321203",
    progress: Callable[[int], object] | None = None,
    keystore: KeyStore | None = None,
) -> BulkResult:
    """Import in chunks, one transaction per chunk (an interrupted run resumes by re-running it).

    With ``keystore`` the department's signing key is published with its first imported licence.
    """
    total = BulkResult()
    run = ImportRun()
    for batch in chunks(rows, chunk_size):
        with db.transaction() as session:
            dept = session.get(Department, dept_id)
            if dept is None:
                raise Invalid("颁发部门不存在")
            result = bulk_issue(
                session, actor, dept, batch, source=source, default_area=default_area, run=run
            )
            if keystore is not None and result.inserted:
                ensure_signing_key(session, keystore, dept.id or 0, dept.uscc)
            total.merge(result)
        if progress:
            progress(len(batch))
    return total
