"""Bulk issue: CSV import of historical licences (synthetic licences for the demo and the benchmarks are
generated in demo/synthetic_licences.py and go through the same ``run_bulk``).

Rows go through the same validation as a single issue (``issuing.prepare_licence``); the writes
are set-based (one multi-row INSERT per chunk for licences and one for their outbox rows) and the
chunk gets one audit row naming the source and the id range, so 140k licences take seconds.
Re-running an import is harmless: a row without a 流水号 gets one derived from its type, issuer and
证照编号, so the same row always maps to the same identifier and is skipped the second time.
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
) -> BulkResult:
    """Validate and insert one chunk of (line number, row) pairs for ``dept``; flushes, never commits.

    Bad rows are reported with their line and reason and left out; good rows are inserted with their
    outbox rows; rows whose identifier already exists are counted as skipped.
    """
    result = BulkResult()
    types: dict[str, LicenceType | None] = {}
    refused: dict[str, str | None] = {}  # type code -> why the actor may not import it (None: may)
    producing: dict[str, list[str]] = {}  # type code -> the department's services producing it
    prepared: list[tuple[int, dict[str, Any]]] = []
    now = utcnow()
    seen: set[str] = set()
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
            inp = prepare_licence(lt, data, default_area=default_area, on=on)
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
        if values["identifier"] in seen:
            result.skipped += 1
            continue
        seen.add(values["identifier"])
        prepared.append((line, values))
    if not prepared:
        return result
    existing = existing_identifiers(session, [v["identifier"] for _, v in prepared])
    new = [(line, v) for line, v in prepared if v["identifier"] not in existing]
    result.skipped += len(prepared) - len(new)
    # One live licence per type, department and 证照编号 (uq_licence_number): a number that another
    # licence or an earlier row of the file holds is a bad row, reported with its line (inserted, it
    # would fail the whole chunk with an IntegrityError).
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
        fresh.append(values)
    if not fresh:
        return result
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
    outbox = table_of(LicenceOutbox)
    outbox_rows = [outbox_row(SimpleNamespace(**v), "issue") for v in fresh]
    session.execute(sa.insert(outbox), outbox_rows)
    recon_state.note_changes(session, [recon_state.Change.of_outbox(r) for r in outbox_rows])
    result.inserted = len(fresh)
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
    for batch in chunks(rows, chunk_size):
        with db.transaction() as session:
            dept = session.get(Department, dept_id)
            if dept is None:
                raise Invalid("颁发部门不存在")
            result = bulk_issue(session, actor, dept, batch, source=source, default_area=default_area)
            if keystore is not None and result.inserted:
                ensure_signing_key(session, keystore, dept.id or 0, dept.uscc)
            total.merge(result)
        if progress:
            progress(len(batch))
    return total
