"""`flask demo ...`: build the Gaogang demo from the real data once (later runs reuse it), and
generate synthetic licences for demos and load tests. Registered only by the demo runner's app
(demo.app); a production configuration has none of these commands."""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlmodel import select
from tqdm import tqdm

from core.auth import SYSTEM
from core.web import database, settings


@click.group("demo", help="演示数据 (demo data)")
def demo() -> None:
    pass


@demo.command("load")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar while importing items.")
@with_appcontext
def load(progress: bool) -> None:
    """Load the Gaogang demo (divisions, items, claims, users, tokens); idempotent."""
    from demo import catalog_demo

    db = database()
    s = settings()
    summary = catalog_demo.load(db, s, progress=progress, echo=click.echo)
    if not summary.reused:
        click.echo(
            f"demo loaded: {summary.town_bodies} town/street bodies, "
            f"{summary.village_bodies} village bodies, "
            f"{summary.town_claims} town-level and {summary.village_claims} village-level claims, "
            f"{summary.no_contact} no-contact entries"
        )
        for line, reason in summary.import_errors[:20]:
            click.echo(f"  import: line {line}: {reason}", err=True)
    # The licence and reports parts build on the catalogue; each is idempotent on its own.
    for name in ("licences_demo", "reports_demo", "cases_demo"):
        try:
            part = importlib.import_module(f"demo.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"demo.{name}":
                raise
            continue
        part.load(db, s)
        click.echo(f"{name.replace('_demo', '')} demo: done")


@demo.command("generate-licences")
@click.option("--count", default=140_000, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("--department", "uscc", help="颁发部门的统一社会信用代码（缺省为演示审批局）")
@click.option("--year", default=2018, show_default=True, type=click.IntRange(2000, 2100))
@click.option("--seed", default=2018, show_default=True, type=int)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="写入 CSV 文件而不是数据库（可再用 flask licences import 导入）",
)
@click.option("--chunk", default=10_000, show_default=True, type=click.IntRange(100, 50000))
@with_appcontext
def generate_licences(
    count: int, uscc: str | None, year: int, seed: int, csv_path: Path | None, chunk: int
) -> None:
    """生成合成证照（校验位与日期有效），供演示和压测使用；经由正式的批量颁发服务写入。"""
    from catalog.models import Department
    from demo.licences_demo import find_or_create_department, load_types
    from demo.synthetic_licences import synthetic_rows, write_csv
    from licenses.bulk import run_bulk
    from licenses.models import LicenceType

    db = database()
    with db.transaction() as session:
        load_types(session)
        types = list(session.exec(select(LicenceType).where(LicenceType.is_active)).all())
        session.expunge_all()
    rows = synthetic_rows(types, count, year=year, seed=seed)
    started = time.perf_counter()
    if csv_path:
        n = write_csv(csv_path, tqdm(rows, total=count, unit="张"))
        click.echo(f"已写入 {n} 行到 {csv_path}")
        return
    with db.transaction() as session:
        if uscc:
            dept = session.exec(select(Department).where(Department.uscc == uscc)).first()
            if dept is None:
                raise click.ClickException(f"找不到统一社会信用代码为 {uscc} 的部门")
        else:
            dept = find_or_create_department(session, 0)
        dept_id = dept.id or 0
    with tqdm(total=count, unit="张", desc="生成") as bar:
        result = run_bulk(
            db,
            SYSTEM,
            dept_id,
            rows,
            source=f"synthetic:{seed}",
            chunk_size=chunk,
            default_area=settings().district_code,
            progress=bar.update,
        )
    elapsed = time.perf_counter() - started
    click.echo(
        f"生成 {result.inserted} 张（跳过 {result.skipped}，错误 {len(result.errors)}），"
        f"用时 {elapsed:.1f} 秒，{result.inserted / max(elapsed, 1e-9):.0f} 张/秒"
    )


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(demo)
