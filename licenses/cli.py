"""`flask licences ...`: bulk import of historical licences, synthetic licences, licence types."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlmodel import select
from tqdm import tqdm

from catalog.models import Department
from core.auth import SYSTEM
from core.errors import DomainError
from core.web import database, settings


@click.group("licences", help="电子证照：批量导入、生成演示/压测数据、证照目录")
def licences() -> None:
    pass


def _department(uscc: str | None) -> int:
    with database().transaction() as session:
        query = select(Department)
        if uscc:
            query = query.where(Department.uscc == uscc)
        else:
            from demo.licences_demo import find_or_create_department

            return find_or_create_department(session, 0).id or 0
        dept = session.exec(query).first()
        if dept is None:
            raise click.ClickException(f"找不到统一社会信用代码为 {uscc} 的部门")
        return dept.id or 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


@licences.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--department", "uscc", help="颁发部门的统一社会信用代码（缺省为演示审批局）")
@click.option("--chunk", default=5000, show_default=True, type=click.IntRange(100, 50000),
              help="每批写入的行数")
@with_appcontext
def import_file(file: Path, uscc: str | None, chunk: int) -> None:
    """从 UTF-8 CSV 导入历史证照（列见 docs/licences.md）；重复运行跳过已导入的行。"""
    from licenses.bulk import read_csv, run_bulk

    dept_id = _department(uscc)
    started = time.perf_counter()
    try:
        with tqdm(total=_count_lines(file), unit="行", desc="导入") as bar:
            result = run_bulk(
                database(),
                SYSTEM,
                dept_id,
                read_csv(file),
                source=f"csv:{file.name}",
                chunk_size=chunk,
                default_area=settings().district_code,
                progress=bar.update,
            )
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    for line, reason in result.errors[:200]:
        click.echo(f"第 {line} 行：{reason}", err=True)
    if len(result.errors) > 200:
        click.echo(f"……另有 {len(result.errors) - 200} 行错误未列出", err=True)
    click.echo(
        f"导入 {result.inserted} 张，已存在跳过 {result.skipped} 张，错误 {len(result.errors)} 行，"
        f"用时 {time.perf_counter() - started:.1f} 秒"
    )
    if result.errors:
        raise SystemExit(1)


@licences.command("generate")
@click.option("--count", default=140_000, show_default=True, type=click.IntRange(1, 5_000_000),
              help="生成的证照数量")
@click.option("--department", "uscc", help="颁发部门的统一社会信用代码（缺省为演示审批局）")
@click.option("--year", default=2018, show_default=True, type=click.IntRange(2000, 2100),
              help="起始颁发年度")
@click.option("--seed", default=2018, show_default=True, type=int, help="随机数种子（相同种子生成相同数据）")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="写入 CSV 文件而不是数据库（可再用 import 导入）",
)
@click.option("--chunk", default=10_000, show_default=True, type=click.IntRange(100, 50000),
              help="每批写入的行数")
@with_appcontext
def generate(count: int, uscc: str | None, year: int, seed: int, csv_path: Path | None, chunk: int) -> None:
    """生成合成证照（校验位和日期有效），仅用于性能测试和演示。"""
    from demo.licences_demo import load_types
    from licenses.bulk import run_bulk, synthetic_rows, write_csv
    from licenses.models import LicenceType

    with database().transaction() as session:
        load_types(session)
        types = list(session.exec(select(LicenceType).where(LicenceType.is_active)).all())  # type: ignore[arg-type]
        session.expunge_all()
    rows = synthetic_rows(types, count, year=year, seed=seed)
    started = time.perf_counter()
    if csv_path:
        n = write_csv(csv_path, tqdm(rows, total=count, unit="张"))
        click.echo(f"已写入 {n} 行到 {csv_path}")
        return
    dept_id = _department(uscc)
    with tqdm(total=count, unit="张", desc="生成") as bar:
        result = run_bulk(
            database(),
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


@licences.command("load-types")
@with_appcontext
def load_types_command() -> None:
    """从 data/ 载入证照类型（真实名称和已观测到的国家代码）；可重复运行。"""
    from demo.licences_demo import load_types

    with database().transaction() as session:
        added = load_types(session)
    click.echo(f"新增证照类型 {added} 个")


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(licences)
