"""`flask reports ...`: import case statistics, freeze a year-end snapshot, build the annual report;
`flask cases ...`: import case records, refresh the 电子监察 warnings, show the working-day calendar."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from core import workdays
from core.auth import SYSTEM
from core.errors import DomainError
from core.types import china_today
from core.web import database, settings
from reports import annual_report, bundles, cases, entered_figures, services, snapshot, supervision


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


@reports_cli.command("load-figures")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--year", type=int, required=True, help="报告年度")
@with_appcontext
def load_figures(csv_path: Path, year: int) -> None:
    """导入年度报告的填报数字，列：key,value,unit[,scope,section,note]。

    格式同 data/gaogang_2018_report_figures.csv。

    unit 含“(at least)”或“(more than)”的数字按“余/多”印出。任何一行有误时整份文件不导入，并逐行列出错误。
    """
    try:
        text = csv_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        click.echo("错误：文件不是 UTF-8 编码", err=True)
        sys.exit(1)
    try:
        with database().transaction() as session:
            count = entered_figures.load_figures_csv(session, SYSTEM, year=year, text=text)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"已导入 {year} 年填报数字 {count} 项；请重新冻结 {year} 年快照后生成报告")


@reports_cli.command("check-bundles")
@with_appcontext
def check_bundles() -> None:
    """检查“一件事”套餐：开办类含延续/变更/注销事项、事项未发布、未填报承诺时限。有问题时退出码为 1。"""
    with database().transaction() as session:
        found = bundles.check_bundles(session)
        names = {b.id: b.name for b in bundles.list_bundles(session)}
    if not found:
        click.echo("“一件事”检查通过：未发现问题")
        return
    for bundle_id, warnings in found.items():
        click.echo(f"“{names.get(bundle_id, bundle_id)}”（编号 {bundle_id}）：")
        for w in warnings:
            click.echo(f"  - {w}")
    sys.exit(1)


@reports_cli.command("snapshot")
@click.option("--year", type=int, required=True, help="统计年度")
@with_appcontext
def freeze(year: int) -> None:
    """冻结已结束年度的年末数据（新建快照，旧快照保留）。"""
    try:
        with database().transaction() as session:
            snap = snapshot.create_snapshot(session, SYSTEM, year)
    except DomainError as exc:
        _fail(exc)
    # Said once committed: a snapshot announced before the commit could still be rolled back.
    click.echo(f"{year} 年年末快照 #{snap.id}，指标定义版本 {snap.definitions_version}，哈希 {snap.hash}")


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
    frozen = None
    try:
        with database().transaction() as session:
            if snapshot.latest_snapshot(session, year) is None and freeze:
                frozen = snapshot.create_snapshot(session, SYSTEM, year).id
            report = annual_report.build_report(session, year)
    except DomainError as exc:
        _fail(exc)
    # Said once committed: building the report after freezing can still fail and roll the snapshot back.
    if frozen is not None:
        click.echo(f"没有 {year} 年快照，已冻结 #{frozen}")
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


@click.group("cases", help="办件记录与电子监察 (case records and electronic supervision)")
def cases_cli() -> None:
    pass


@cases_cli.command("import")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def import_case_records(csv_path: Path) -> None:
    """导入办件记录（一行一件，UTF-8 CSV）。列：project_no,task_code,accept_date,channel 必填；
    apply_date,promise_date,applicant_type,result_date,result_type,special_procedures 可选。
    同一办件编号再次导入即更新；任何一行有错则整个文件不导入。"""
    try:
        with csv_path.open(encoding="utf-8", newline="") as stream, database().transaction() as session:
            result = cases.import_cases(
                session,
                SYSTEM,
                cases.read_csv(stream),
                today=china_today(),
                source="csv",
                yellow_days=settings().case_yellow_days,
            )
    except UnicodeDecodeError:
        click.echo("错误：文件不是 UTF-8 编码", err=True)
        sys.exit(1)
    except DomainError as exc:
        _fail(exc)
    click.echo(
        f"已导入 {result.rows} 行：新增 {result.created}，更新 {result.updated}，未变 {result.unchanged}"
    )


@cases_cli.command("refresh-warnings")
@with_appcontext
def refresh_warnings() -> None:
    """按今天（北京时间）重新计算在办办件的黄牌、红牌预警（定时任务每天执行一次）。"""
    with database().transaction() as session:
        report = supervision.refresh_warnings(session, SYSTEM, china_today(), settings().case_yellow_days)
    click.echo(
        f"已检查 {report.checked} 件：黄牌 {report.counts['yellow']}，红牌 {report.counts['red']}，"
        f"变动 {report.changed}"
    )
    if report.beyond_calendar:
        click.echo("注意：今天超出节假日数据范围，按周一至周五计算工作日", err=True)


@cases_cli.command("calendar")
def calendar() -> None:
    """显示工作日历的节假日数据范围：chinese-calendar 软件包与节假日通知文件（WORKDAY_CALENDAR_FILE）。"""
    entered = workdays.notices()
    click.echo(f"chinese-calendar 软件包：{workdays.DATA_START} 至 {workdays.PACKAGE_END}")
    if entered.years:
        for year in sorted(entered.years):
            days = [d for d in entered.days if d.year == year]
            off = sum(not entered.days[d] for d in days)
            click.echo(f"通知文件 {entered.path}：{year} 年，放假 {off} 天，调休上班 {len(days) - off} 天")
    else:
        click.echo(f"通知文件 {entered.path}：没有录入任何年份")
    end = workdays.data_end()
    click.echo(f"节假日安排连续覆盖至 {end}；此后按周一至周五计算工作日")
    today = china_today()
    if workdays.beyond_data(today) or end.year == today.year:
        click.echo(
            f"注意：国务院办公厅公布 {end.year + 1} 年节假日安排后，请录入通知文件"
            f"（列：{','.join(workdays.COLUMNS)}）",
            err=True,
        )
