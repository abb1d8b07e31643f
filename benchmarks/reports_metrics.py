"""Measure the coverage metrics and the annual report at district scale on PostgreSQL.

Usage: .venv/bin/python -m benchmarks.reports_metrics [--pg URL] [--entries 15000] [--licences 140000]

Builds a fresh schema with the migrations in its own database (default gaogang_bench_reports),
bulk-loads a synthetic district with COPY: the real Gaogang divisions, 200 implementing bodies,
3,000 basic items, N entries (two saved versions each), 80 licence types, M licences with one
outbox record each (mostly sent), and twelve months of case statistics for two thirds of the
entries. Then times, in one run:
  - baseline: fetching the same columns with plain SELECTs (what any metric code must read),
  - all metrics (load facts as of year end + compute every definition), 5 runs,
  - freezing the year-end snapshot, and the report in HTML, Markdown and DOCX.
Prints a Markdown table; nothing is asserted (figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.codes import make_uscc  # noqa: E402
from catalog.divisions import load_divisions_csv  # noqa: E402
from core.auth import SYSTEM  # noqa: E402
from core.db import Database  # noqa: E402
from reports import annual_report, metrics, services, snapshot  # noqa: E402
from tests.conftest import _ensure_pg_database, reset_and_migrate_pg  # noqa: E402

YEAR = 2025
DATA = ROOT / "data"
T0 = datetime(YEAR, 1, 3, tzinfo=UTC)


def copy_rows(db: Database, table: str, columns: list[str], rows: Sequence[tuple[object, ...]]) -> None:
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def build(db: Database, n_entries: int, n_licences: int) -> dict[str, int]:
    rng = random.Random(20251231)
    with db.transaction() as session:
        load_divisions_csv(
            session,
            DATA / "divisions_321203_gaogang_towns.csv",
            DATA / "divisions_321203_gaogang_villages.csv",
            None,
        )
        towns = [c for (c,) in session.execute(sa.text("SELECT code FROM division WHERE level='town'"))]
        villages = [c for (c,) in session.execute(sa.text("SELECT code FROM division WHERE level='village'"))]
    bodies: list[tuple[object, ...]] = []
    for i in range(32):
        bodies.append((f"区部门{i:02d}", make_uscc("11321203", f"8{i:07d}"), "4", "321203000000", T0))
    for i, code in enumerate(towns):
        bodies.append((f"镇街{code[6:9]}", make_uscc("11321203", f"7{i:07d}"), "5", code, T0))
    for i, code in enumerate(villages):
        bodies.append((f"村社区{code[6:]}", make_uscc("11321203", f"6{i:07d}"), "6", code, T0))
    copy_rows(db, "department", ["name", "uscc", "level", "division_code", "created_at"], bodies)
    types = ["01", "07", "08", "05", "04", "10", "20", "02", "09"]
    items = [
        (
            f"00{types[i % 9]}{i:05d}000",
            f"事项{i}",
            types[i % 9],
            "依据",
            "4,5,6" if i % 3 == 0 else "4",
            False,
            T0,
            T0,
        )
        for i in range(3000)
    ]
    copy_rows(
        db,
        "catalog_item",
        ["code", "name", "task_type", "legal_basis", "use_levels", "county_only", "created_at", "updated_at"],
        items,
    )
    with db.engine.connect() as conn:
        depts = conn.execute(
            sa.text("SELECT id, uscc, level, division_code FROM department ORDER BY id")
        ).all()
        item_rows = conn.execute(
            sa.text("SELECT id, code, name, task_type, use_levels FROM catalog_item")
        ).all()
    district = [d for d in depts if d.level == "4"]
    lower = [d for d in depts if d.level != "4"]
    shared = [i for i in item_rows if "5" in i.use_levels]
    entries: list[tuple[object, ...]] = []
    seen: set[tuple[int, int]] = set()
    while len(entries) < n_entries:
        if rng.random() < 0.8:
            dept, item = rng.choice(district), rng.choice(item_rows)
        else:
            dept, item = rng.choice(lower), rng.choice(shared)
        if (dept.id, item.id) in seen:
            continue
        seen.add((dept.id, item.id))
        visits = rng.choice((0, 0, 1, 1, 2))
        depth = rng.choice(("1,2", "1,2,3", "4,5,6", "4,5,7", "", "1"))
        status = rng.choice(("published",) * 8 + ("draft", "retired"))
        created = T0 + timedelta(days=rng.randrange(300))
        entries.append(
            (
                f"{dept.uscc}{dept.level}{item.code}",
                item.id,
                dept.id,
                dept.level,
                dept.division_code,
                item.name,
                item.task_type,
                "依据",
                item.code,
                rng.random() > 0.05,
                status,
                2,
                visits,
                depth,
                visits == 0 and depth.startswith("4"),
                created,
                created,
                created + timedelta(days=5) if status == "published" else None,
            )
        )
    cols = [
        "task_code",
        "item_id",
        "department_id",
        "level",
        "division_code",
        "name",
        "task_type",
        "legal_basis",
        "catalog_code",
        "applicable",
        "status",
        "version",
        "visits",
        "online_depth",
        "no_contact",
        "created_at",
        "updated_at",
        "published_at",
    ]
    extra = {
        "accept_conditions": "",
        "anticipate_unit": "working",
        "promise_unit": "working",
        "project_type": "2",
        "result_delivery": "window",
        "keywords": "",
    }
    copy_rows(db, "implementation_entry", cols + list(extra), [e + tuple(extra.values()) for e in entries])
    with db.engine.connect() as conn:
        entry_rows = conn.execute(
            sa.text("SELECT id, status, created_at, published_at FROM implementation_entry")
        ).all()
    versions: list[tuple[object, ...]] = []
    for e in entry_rows:
        versions.append((e.id, 1, "draft", json.dumps({"visits": 1}), e.created_at))
        if e.status != "draft":
            versions.append((e.id, 2, e.status, json.dumps({}), e.published_at or e.created_at))
    copy_rows(db, "entry_version", ["entry_id", "version", "status", "snapshot", "created_at"], versions)

    lt = [
        (
            f"11321203000000000X{i:03d}",
            f"证照类型{i}",
            "区",
            "11321203000000000X",
            "区县级",
            "001",
            "证照",
            None,
            "[]",
            True,
            T0,
            T0,
        )
        for i in range(80)
    ]
    copy_rows(
        db,
        "licence_type",
        [
            "code",
            "name",
            "authority_name",
            "authority_code",
            "authority_level",
            "holder_code_type",
            "category",
            "validity_years",
            "face_schema",
            "is_active",
            "created_at",
            "updated_at",
        ],
        lt,
    )
    with db.engine.connect() as conn:
        type_rows = conn.execute(sa.text("SELECT id, code, name FROM licence_type")).all()
    issuers = district[:28]
    licences: list[tuple[object, ...]] = []
    for n in range(n_licences):
        t, issuer = type_rows[n % len(type_rows)], issuers[n % len(issuers)]
        created = T0 + timedelta(minutes=n * 3)
        status = "revoked" if n % 50 == 0 else "valid"
        licences.append(
            (
                f"1.2.156.3005.2.{t.code}.{issuer.uscc}.{n:010d}.001.X",
                t.id,
                t.code,
                t.name,
                f"{n:010d}",
                1,
                f"No.{n}",
                "持证人",
                "91321203MA00000000",
                "001",
                issuer.id,
                issuer.uscc,
                "区部门",
                created.date(),
                created.date(),
                "321203",
                "{}",
                status,
                1,
                created + timedelta(days=30) if status == "revoked" else None,
                True,
                created,
                created,
            )
        )
    copy_rows(
        db,
        "licence",
        [
            "identifier",
            "type_id",
            "type_code",
            "type_name",
            "serial",
            "version",
            "number",
            "holder_name",
            "holder_code",
            "holder_code_type",
            "issuer_department_id",
            "issuer_code",
            "issuer_name",
            "issue_date",
            "valid_from",
            "area_code",
            "face",
            "status",
            "revision",
            "status_changed_at",
            "is_current",
            "created_at",
            "updated_at",
        ],
        licences,
    )
    with db.engine.connect() as conn:
        lic_rows = conn.execute(sa.text("SELECT id, identifier, issuer_code, created_at FROM licence")).all()
    outbox = []
    for r in lic_rows:
        status = "sent" if r.id % 97 else rng.choice(("failed", "pending"))
        outbox.append(
            (
                r.id,
                r.identifier,
                1,
                "issue",
                "{}",
                r.issuer_code,
                r.created_at.date(),
                status,
                1,
                f"{r.identifier}:1",
                r.created_at,
                r.created_at,
                r.created_at + timedelta(seconds=rng.randrange(1, 4000)) if status == "sent" else None,
            )
        )
    copy_rows(
        db,
        "licence_outbox",
        [
            "licence_id",
            "identifier",
            "version",
            "operation",
            "payload",
            "issuer_code",
            "issue_day",
            "status",
            "attempts",
            "idem_key",
            "created_at",
            "updated_at",
            "synced_at",
        ],
        outbox,
    )
    cases = []
    for e in entry_rows:
        if e.id % 3 == 0:
            continue
        for month in range(1, 13):
            received = rng.randrange(0, 40)
            online = rng.randrange(0, received + 1)
            cases.append((e.id, YEAR, month, received, online, received, received, "csv", T0))
    copy_rows(
        db,
        "report_case_stat",
        ["entry_id", "year", "month", "received", "online", "finished", "on_time", "source", "imported_at"],
        cases,
    )
    with db.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    return {
        "entries": len(entries),
        "entry_versions": len(versions),
        "licences": len(licences),
        "outbox": len(outbox),
        "case_rows": len(cases),
        "bodies": len(bodies),
    }


def baseline(db: Database) -> None:
    with db.engine.connect() as conn:
        for sql in (
            "SELECT id, status, visits, online_depth, no_contact FROM implementation_entry",
            "SELECT entry_id, status FROM entry_version",
            "SELECT id, type_code, issuer_department_id, created_at FROM licence",
            "SELECT licence_id, status, created_at, synced_at FROM licence_outbox",
            "SELECT entry_id, month, received FROM report_case_stat",
        ):
            conn.execute(sa.text(sql)).all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_reports")
    parser.add_argument("--entries", type=int, default=15_000)
    parser.add_argument("--licences", type=int, default=140_000)
    args = parser.parse_args()
    _ensure_pg_database(args.pg)
    reset_and_migrate_pg(args.pg)
    db = Database(args.pg)
    started = time.perf_counter()
    sizes = build(db, args.entries, args.licences)
    print(f"data built in {time.perf_counter() - started:.1f} s: {sizes}")
    as_of = services.year_bounds(YEAR)[1]
    rows: list[tuple[str, str]] = []

    def runs(label: str, fn: Callable[[], object], n: int = 5) -> None:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        rows.append(
            (label, f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})")
        )

    runs("baseline: plain SELECT of the columns the metrics read", lambda: baseline(db))

    def load_only() -> None:
        with db.transaction() as session:
            services.load_facts(session, YEAR, as_of)

    def all_metrics() -> None:
        with db.transaction() as session:
            metrics.compute_all(services.load_facts(session, YEAR, as_of))

    runs("load facts as of year end", load_only)
    runs(f"all {len(metrics.DEFINITIONS)} metrics (load + compute)", all_metrics)

    def report_all() -> None:
        with db.transaction() as session:
            snapshot.create_snapshot(session, SYSTEM, YEAR)
            report = annual_report.build_report(session, YEAR)
        annual_report.render_html(report)
        annual_report.render_markdown(report)
        io.BytesIO(annual_report.render_docx(report))

    runs("freeze snapshot + report in HTML, Markdown and DOCX", report_all, n=3)
    load = os.getloadavg()
    print(
        f"\n{datetime.now(UTC).date().isoformat()} · PostgreSQL · {sizes} · load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (2 cores)\n"
    )
    print("| step | time |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
