"""Measure case intake (办件) and 电子监察 at district scale on PostgreSQL.

Usage: .venv/bin/python -m benchmarks.cases_import [--pg URL] [--cases 1000000] [--entries 3000]
                                                    [--open-share 0.1] [--reimport]

Targets (issue #13): importing 1M cases <= 60 s; warnings over a year's cases <= 30 s.

Builds a fresh schema with the migrations in its own database (default gaogang_bench_cases), loads
the real Gaogang divisions, 40 departments, N implementation entries with 承诺/法定时限 (COPY), and
writes a CSV of M cases accepted over one year (YEAR), about 1 in 20 with a special procedure, a
share ``--open-share`` still open at year end and the rest finished (some late). Then times, as the
CLI runs them (one transaction each):
  - baseline: COPY of the same rows into an unindexed scratch table (the floor any import pays),
  - `flask cases import FILE` (reports.cases.import_cases over reports.cases.read_csv),
  - with --reimport: the same file again (every row found unchanged),
  - the daily warnings refresh on 31 Dec of YEAR (reports.supervision.refresh_warnings), twice (the
    second run finds nothing to change), and 按时办结率 / 提速率 / warning counts over the year.
Prints a Markdown table; nothing is asserted (figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog.codes import make_uscc  # noqa: E402
from catalog.divisions import load_divisions_csv  # noqa: E402
from core.auth import SYSTEM  # noqa: E402
from core.db import Database  # noqa: E402
from reports import cases, supervision  # noqa: E402
from tests.conftest import _ensure_pg_database, reset_and_migrate_pg  # noqa: E402

YEAR = 2025
DATA = ROOT / "data"
T0 = datetime(YEAR, 1, 1, tzinfo=UTC)
HEADER = [
    "project_no",
    "task_code",
    "accept_date",
    "channel",
    "apply_date",
    "applicant_type",
    "result_date",
    "result_type",
    "special_procedures",
]


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


def build(db: Database, n_entries: int) -> list[str]:
    """Divisions, departments, items and entries; returns the entries' 实施编码."""
    rng = random.Random(20250101)
    with db.transaction() as session:
        load_divisions_csv(
            session,
            DATA / "divisions_321203_gaogang_towns.csv",
            DATA / "divisions_321203_gaogang_villages.csv",
            None,
        )
    depts = [
        (f"区部门{i:02d}", make_uscc("11321203", f"8{i:07d}"), "4", "321203000000", T0) for i in range(40)
    ]
    copy_rows(db, "department", ["name", "uscc", "level", "division_code", "created_at"], depts)
    items = [(f"0001{i:05d}000", f"事项{i}", "01", "依据", "4", False, T0, T0) for i in range(n_entries)]
    copy_rows(
        db,
        "catalog_item",
        ["code", "name", "task_type", "legal_basis", "use_levels", "county_only", "created_at", "updated_at"],
        items,
    )
    with db.engine.connect() as conn:
        dept_rows = conn.execute(sa.text("SELECT id, uscc FROM department ORDER BY id")).all()
        item_rows = conn.execute(sa.text("SELECT id, code, name FROM catalog_item ORDER BY id")).all()
    entries = []
    for item in item_rows:
        dept = rng.choice(dept_rows)
        anticipate = rng.choice((10, 15, 20, 30))
        entries.append(
            (
                f"{dept.uscc}4{item.code}",
                item.id,
                dept.id,
                "4",
                "321203000000",
                item.name,
                "01",
                "依据",
                item.code,
                True,
                "published",
                1,
                1,
                "",
                False,
                anticipate,
                "working",
                max(1, anticipate // rng.choice((2, 3, 4))),
                "working",
                "",
                "2",
                "window",
                "",
                T0,
                T0,
                T0,
            )
        )
    copy_rows(
        db,
        "implementation_entry",
        [
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
            "anticipate_days",
            "anticipate_unit",
            "promise_days",
            "promise_unit",
            "accept_conditions",
            "project_type",
            "result_delivery",
            "keywords",
            "created_at",
            "updated_at",
            "published_at",
        ],
        entries,
    )
    return [e[0] for e in entries]


def write_cases(path: Path, codes: list[str], n_cases: int, open_share: float) -> None:
    rng = random.Random(20251231)
    start = date(YEAR, 1, 2)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for i in range(n_cases):
            accept = start + timedelta(days=rng.randrange(360))
            special = ""
            if rng.random() < 0.05:
                s = accept + timedelta(days=rng.randrange(1, 4))
                special = f"{s.isoformat()}/{(s + timedelta(days=rng.randrange(0, 5))).isoformat()}"
            result_date = result_type = ""
            if rng.random() >= open_share:
                # Most cases finish within a week or two (inside the promise), a few run late.
                end = accept + timedelta(
                    days=rng.randrange(0, 10) if rng.random() < 0.9 else rng.randrange(10, 40)
                )
                if special:
                    end = max(end, date.fromisoformat(special[11:]))
                end = min(end, date(YEAR, 12, 31))
                result_date, result_type = end.isoformat(), rng.choice(("approved",) * 9 + ("refused",))
                if special and date.fromisoformat(special[11:]) > end:
                    special = ""
            out.writerow(
                [
                    f"321203{YEAR}{i:09d}",
                    rng.choice(codes),
                    accept.isoformat(),
                    "online" if rng.random() < 0.6 else "window",
                    (accept - timedelta(days=rng.randrange(0, 3))).isoformat(),
                    rng.choice(("person", "legal")),
                    result_date,
                    result_type,
                    special,
                ]
            )


def timed(label: str, fn: Callable[[], Any], rows: list[tuple[str, float, float, str]]) -> Any:
    """Wall time and this process's CPU time (the database server's work is in the wall time only)."""
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    rows.append((label, elapsed, cpu, str(value)))
    print(f"{label}: {elapsed:.2f} s (CPU {cpu:.2f} s)  {value}", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_cases")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=3000)
    parser.add_argument("--open-share", type=float, default=0.1)
    parser.add_argument("--reimport", action="store_true")
    args = parser.parse_args()
    _ensure_pg_database(args.pg)
    reset_and_migrate_pg(args.pg)
    db = Database(args.pg)
    codes = build(db, args.entries)
    today = date(YEAR, 12, 31)
    rows: list[tuple[str, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cases.csv"
        write_cases(path, codes, args.cases, args.open_share)
        size_mb = path.stat().st_size / 1e6
        print(f"{args.cases} cases, {size_mb:.0f} MB CSV, {args.entries} entries", flush=True)

        def baseline() -> int:
            with db.engine.begin() as conn:
                conn.execute(
                    sa.text("CREATE TEMP TABLE scratch (" + ", ".join(f"{h} text" for h in HEADER) + ")")
                )
                raw = conn.connection.driver_connection
                assert raw is not None  # noqa: S101 (an open connection has its driver connection)
                with (
                    path.open("rb") as f,
                    raw.cursor() as cur,
                    cur.copy("COPY scratch FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
                ):
                    while block := f.read(1 << 20):
                        copy.write(block)
                return int(conn.execute(sa.text("SELECT count(*) FROM scratch")).scalar_one())

        timed("baseline: COPY the file into an unindexed text table", baseline, rows)

        def run_import() -> dict[str, int]:
            with path.open(encoding="utf-8", newline="") as stream, db.transaction() as session:
                return cases.import_cases(
                    session, SYSTEM, cases.read_csv(stream), today=today, source="csv"
                ).as_dict()

        timed(f"import {args.cases} cases (flask cases import)", run_import, rows)
        if args.reimport:
            timed("import the same file again (all unchanged)", run_import, rows)

    def refresh() -> dict[str, Any]:
        with db.transaction() as session:
            return supervision.refresh_warnings(session, SYSTEM, today).as_dict()

    timed("warnings refresh over the year (first run)", refresh, rows)
    timed("warnings refresh again (nothing changes)", refresh, rows)

    def figures() -> str:
        with db.transaction() as session:
            rates = supervision.compute_rates(session, date(YEAR, 1, 1), today)
            counts = supervision.warning_counts(session)
            first_page = supervision.list_warnings(session, None, limit=100)
        return (
            f"on-time {rates.on_time}/{rates.finished}, speed-up {rates.speed_up_rate:.3f}, "
            f"warnings {counts}, page {len(first_page)}"
        )

    timed("按时办结率, 提速率, warning counts and the first page", figures, rows)
    print(
        f"\nload average {os.getloadavg()[0]:.1f}\n"
        "| step | seconds | client CPU s | result |\n|---|---:|---:|---|"
    )
    for label, seconds, cpu, value in rows:
        print(f"| {label} | {seconds:.2f} | {cpu:.2f} | {value} |")


if __name__ == "__main__":
    main()
