"""Measure the catalogue import: the real district file and the 泰州 (Taizhou) scale.

Usage: .venv/bin/python -m benchmarks.catalog_import [--pg URL] [--sqlite PATH]

For each database (a fresh schema built with the migrations) it times, in one run:
  1. loading the Gaogang divisions (baseline: 171 units),
  2. importing data/service_items_guangan_511602.csv into 321203 (1,135 rows), then re-running it,
  3. loading all of 泰州市 (6 counties, 109 towns, 1,745 villages),
  4. importing the same file into each of the 6 泰州 counties (6 × 1,135 published entries),
  5. the public entry list (first page, and a name search) at that scale.
Prints a Markdown table; nothing is asserted (figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import entries as entry_services  # noqa: E402
from catalog.codes import make_uscc  # noqa: E402
from catalog.divisions import GAOGANG_FILES, TAIZHOU_FILES, load_divisions_csv  # noqa: E402
from catalog.importer import ImportReport, import_items_csv  # noqa: E402
from catalog.models import ImplementationEntry  # noqa: E402
from core.auth import ANONYMOUS  # noqa: E402
from core.db import Database  # noqa: E402
from tests.conftest import _ensure_pg_database, migrate, reset_and_migrate_pg  # noqa: E402

REAL_FILE = ROOT / "data" / "service_items_guangan_511602.csv"
TAIZHOU_COUNTIES = ["321202", "321203", "321204", "321281", "321282", "321283"]


def synthetic_usccs(code6: str) -> dict[str, str]:
    """Benchmark-only 统一社会信用代码 (valid check digits) for the file's departments in a county:
    the item file gives none, and the importer refuses to make them up."""
    with REAL_FILE.open(encoding="utf-8-sig", newline="") as fh:
        names = sorted({row["department"].strip() for row in csv.DictReader(fh)})
    return {
        name: make_uscc(
            "11" + code6, f"{int(hashlib.sha256(f'{code6}|{name}'.encode()).hexdigest(), 16) % 10**8:08d}"
        )
        for name in names
    }


CPU: dict[str, float] = {}


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Wall time; the process CPU time of the last call goes to CPU["last"] (the machine is shared)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    CPU["last"] = time.process_time() - cpu
    return time.perf_counter() - started, result


def run(db: Database) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []

    def step(label: str, fn: Callable[[Session], T]) -> T:
        def unit() -> T:
            with db.transaction() as session:
                return fn(session)

        seconds, result = timed(unit)
        rows.append((label, f"{seconds:.2f} s (client CPU {CPU['last']:.2f} s)"))
        return result

    step("load Gaogang divisions (171 units) — baseline", lambda s: load_divisions_csv(s, *GAOGANG_FILES))
    report = step(
        "import real file into 321203 (1,135 rows)",
        lambda s: import_items_csv(
            s, REAL_FILE, "321203", progress=False, department_usccs=synthetic_usccs("321203")
        ),
    )
    _expect(report.created == 1135, report)
    wall = float(rows[-1][1].split(" ")[0])
    rows[-1] = (rows[-1][0], rows[-1][1] + f", {1135 / wall:.0f} rows/s")
    again = step(
        "re-run the same import (idempotent, 0 created)",
        lambda s: import_items_csv(
            s, REAL_FILE, "321203", progress=False, department_usccs=synthetic_usccs("321203")
        ),
    )
    _expect(again.created == 0 and again.skipped == 1135, again)
    step("load all 泰州 divisions (1,860 units)", lambda s: load_divisions_csv(s, *TAIZHOU_FILES))
    total = cpu_total = 0.0
    each = []
    for code in [c for c in TAIZHOU_COUNTIES if c != "321203"]:
        seconds, rep = timed(partial(_import, db, code))
        _expect(rep.created == 1135, rep)
        total += seconds
        cpu_total += CPU["last"]
        each.append(f"{seconds:.1f}")
    rows.append(
        (
            "import the file into the other 5 泰州 counties (5 × 1,135 rows)",
            f"{total:.2f} s (client CPU {cpu_total:.2f} s; per county {', '.join(each)} s)",
        )
    )
    with db.transaction() as session:
        n = session.execute(sa.select(sa.func.count()).select_from(ImplementationEntry)).scalar_one()
    rows.append(("published entries at 泰州 scale", str(n)))

    for label, q in [
        ("public list, first page of 20", None),
        ("public list, name search “许可”", "许可"),
    ]:
        samples = []
        for _ in range(20):
            with db.transaction() as session:
                seconds, _ = timed(partial(entry_services.list_entries, session, ANONYMOUS, q=q))
            samples.append(seconds * 1000)
        rows.append(
            (label, f"median {statistics.median(samples):.1f} ms, max {max(samples):.1f} ms (20 runs)")
        )
    return rows


def _expect(condition: bool, detail: object) -> None:
    if not condition:
        raise SystemExit(f"unexpected import result: {detail}")


def _import(db: Database, code: str) -> ImportReport:
    with db.transaction() as session:
        return import_items_csv(
            session, REAL_FILE, code, progress=False, department_usccs=synthetic_usccs(code)
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_h1"
        ),
    )
    parser.add_argument("--sqlite", default=None)
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    targets = []
    sqlite_path = Path(args.sqlite) if args.sqlite else Path(tempfile.mkdtemp()) / "bench.db"
    if sqlite_path.exists():
        sqlite_path.unlink()
    sqlite_url = f"sqlite:///{sqlite_path}"
    migrate(sqlite_url)
    targets.append(("SQLite", sqlite_url))
    if not args.skip_pg:
        _ensure_pg_database(args.pg)
        reset_and_migrate_pg(args.pg)
        targets.append(("PostgreSQL", args.pg))
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores)")
    for name, url in targets:
        db = Database(url)
        print(f"\n### {name}\n\n| step | time |\n|---|---|")
        for label, value in run(db):
            print(f"| {label} | {value} |")
        db.engine.dispose()
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
