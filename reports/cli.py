"""`flask reports ...`: import case statistics, freeze a year-end snapshot, build the annual report."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from core.auth import SYSTEM
from core.errors import DomainError
from core.web import database
from reports import annual_report, services, snapshot


@click.group("reports", help="覆盖率指标、年末快照与年度报告 (metrics, snapshots, annual report)")
def reports_cli() -> None:
    pass


def _fail(exc: DomainError) -> None:
    click.echo(f"错误：{exc.message}", err=True)
    for where, problems in (exc.details or {}).items():
        for problem in problems if isinstance(problems, list) else [problems]:
            click.echo(f"  {where}：{problem}", err=True)
    sys.exit(1)


@reports_cli.command("import-cases")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--year", type=int, required=True, help="统计年度；文件中的月份必须在该年内")
@with_appcontext
def import_cases(csv_path: Path, year: int) -> None:
    """导入月度办件统计，列：task_code,month(YYYY-MM),received,online,finished,on_time。"""
    try:
        text = csv_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        click.echo("错误：文件不是 UTF-8 编码", err=True)
        sys.exit(1)
    try:
        with database().transaction() as session:
            rows, lines = services.read_case_csv(text)
            result = services.import_case_stats(session, SYSTEM, year=year, rows=rows, line_of=lines)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"已导入 {result.rows} 行：新增 {result.created}，更新 {result.updated}")


@reports_cli.command("snapshot")
@click.option("--year", type=int, required=True, help="统计年度")
@with_appcontext
def freeze(year: int) -> None:
    """冻结已结束年度的年末数据（新建快照，旧快照保留）。"""
    try:
        with database().transaction() as session:
            snap = snapshot.create_snapshot(session, SYSTEM, year)
            click.echo(
                f"{year} 年年末快照 #{snap.id}，指标定义版本 {snap.definitions_version}，哈希 {snap.hash}"
            )
    except DomainError as exc:
        _fail(exc)


@reports_cli.command("build")
@click.option("--year", type=int, required=True, help="统计年度")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="输出目录",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["html", "docx", "md"]),
    default=("html", "docx", "md"),
    show_default=True,
    help="输出格式，可重复指定",
)
@click.option("--freeze/--no-freeze", default=True, show_default=True, help="没有快照时先冻结年末快照")
@with_appcontext
def build(year: int, out_dir: Path, formats: tuple[str, ...], freeze: bool) -> None:
    """根据某年最新快照生成年度报告（HTML、DOCX 和 Markdown）。"""
    try:
        with database().transaction() as session:
            if snapshot.latest_snapshot(session, year) is None and freeze:
                snap = snapshot.create_snapshot(session, SYSTEM, year)
                click.echo(f"没有 {year} 年快照，已冻结 #{snap.id}")
            report = annual_report.build_report(session, year)
    except DomainError as exc:
        _fail(exc)
    out_dir.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        path = out_dir / f"gaogang-annual-report-{year}.{fmt}"
        if fmt == "docx":
            path.write_bytes(annual_report.render_docx(report))
        elif fmt == "md":
            path.write_text(annual_report.render_markdown(report), encoding="utf-8")
        else:
            path.write_text(annual_report.render_html(report), encoding="utf-8")
        click.echo(f"已生成 {path}")
    internal = out_dir / f"gaogang-annual-report-{year}-internal.md"
    internal.write_text(annual_report.render_internal_markdown(report), encoding="utf-8")
    click.echo(f"已生成内部附录（不公开）{internal}")
    click.echo(f"快照哈希 {report.hash}")
    if report.differences:
        click.echo(f"注意：{len(report.differences)} 项数据在快照后有变动，已在内部附录中列出")
    missing = annual_report.missing_figures(report)
    if missing:
        click.echo(
            f"缺少数据 {len(missing)} 项：" + "；".join(missing[:5]) + ("……" if len(missing) > 5 else "")
        )
