"""Bulk issue of a district-year of licences (target: 140,000 in <= 60 s) on SQLite and PostgreSQL.

Each run builds a fresh database with the migrations, loads the licence types, then times
``licenses.bulk.run_bulk`` (validation, identifiers, licence rows, outbox rows, one audit row per
chunk, one transaction per chunk). Baseline in the same run: generating and validating the same rows
without writing them, so the difference is the database's share.

    .venv/bin/python -m benchmarks.licences_bulk [--count 140000] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlmodel import func, select

from core.auth import SYSTEM
from core.config import PROJECT_ROOT
from core.db import Database, make_engine
from demo.licences_demo import ensure_department, load_types
from demo.synthetic_licences import synthetic_rows
from licenses.bulk import run_bulk
from licenses.issuing import prepare_licence
from licenses.models import Licence, LicenceOutbox, LicenceType


def migrate(url: str) -> None:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "heads")


def fresh_pg(url: str) -> str:
    target = sa.engine.make_url(url)
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    return url


def setup(url: str) -> tuple[Database, int, list[LicenceType]]:
    migrate(url)
    db = Database(url)
    with db.transaction() as session:
        load_types(session)
        dept = ensure_department(session, "高港区行政审批局", "11321203", "MB158001")
        types = list(session.exec(select(LicenceType)).all())
        session.expunge_all()
    return db, dept.id or 0, types


def baseline(types: list[LicenceType], count: int) -> float:
    started = time.perf_counter()
    for _, row in synthetic_rows(types, count):
        lt = next(t for t in types if t.code == row["type_code"])
        prepare_licence(lt, {k: v for k, v in row.items() if k != "type_code"}, default_area="321203")
    return time.perf_counter() - started


def run(label: str, url: str, count: int) -> dict[str, float]:
    db, dept_id, types = setup(url)
    base = baseline(types, count)
    started = time.perf_counter()
    result = run_bulk(
        db, SYSTEM, dept_id, synthetic_rows(types, count), source="benchmark", chunk_size=10_000
    )
    elapsed = time.perf_counter() - started
    with db.transaction() as session:
        licences = session.exec(select(func.count()).select_from(Licence)).one()
        outbox = session.exec(select(func.count()).select_from(LicenceOutbox)).one()
    db.engine.dispose()
    if not result.inserted == count == licences == outbox:
        raise SystemExit(
            f"expected {count} licences, got {result.inserted} / {licences} / {outbox}: {result.errors[:3]}"
        )
    print(
        f"{label:<11} {count:>8} licences + {outbox} outbox rows in {elapsed:6.1f} s "
        f"= {count / elapsed:8.0f} /s   (baseline: generate+validate only {base:5.1f} s)",
        flush=True,
    )
    return {"seconds": elapsed, "baseline": base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=140_000)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_licences"
        ),
    )
    parser.add_argument("--skip-pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.count)
    if not args.skip_pg:
        run("PostgreSQL", fresh_pg(args.pg), args.count)


if __name__ == "__main__":
    main()
