"""`flask catalog ...`: load divisions, import a district catalogue, create users and API tokens.

Each command is one transaction (core.db.Database.transaction): it commits when it succeeds and
writes nothing when it fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from tqdm import tqdm

from catalog import quality, quality_report
from catalog.divisions import GAOGANG_FILES, TAIZHOU_FILES, count_by_level, load_divisions_csv
from catalog.importer import import_items_csv, read_department_map, read_uscc_map
from catalog.upper import (
    UpperImportReport,
    import_basic_catalogue,
    import_no_contact_list,
    no_contact_gaps,
    no_contact_list_summary,
)
from core import users
from core.auth import Role
from core.db import Database
from core.errors import DomainError

catalog_cli = AppGroup("catalog", help="政务服务事项目录：区划、事项导入、用户与令牌")


def _db() -> Database:
    db: Database = current_app.extensions["gaogang.db"]
    return db


def _fail(error: DomainError) -> None:
    details = ""
    if isinstance(error.details, dict) and error.details:
        details = "；".join(f"{k}: {', '.join(map(str, v))}" for k, v in error.details.items())
    raise click.ClickException(f"{error.message}" + (f"（{details}）" if details else ""))


@catalog_cli.command("load-divisions")
@click.option("--city", is_flag=True, help="载入泰州市全部区县、乡镇街道和村社区（用于规模测试）")
@click.option("--towns", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="乡级区划 CSV")
@click.option("--villages", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="村级区划 CSV")
@click.option("--counties", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="县级区划 CSV")
def load_divisions_command(
    city: bool, towns: Path | None, villages: Path | None, counties: Path | None
) -> None:
    """载入行政区划（默认：高港区 15 个乡级和 153 个村级单位），可重复运行。"""
    default = TAIZHOU_FILES if city else GAOGANG_FILES
    files = (towns or default[0], villages or default[1], counties or default[2])
    started = time.perf_counter()
    try:
        with _db().transaction() as session:
            changed = load_divisions_csv(session, files[0], files[1], files[2])
            counts = count_by_level(session)
    except DomainError as error:
        _fail(error)
        return
    summary = "，".join(f"{k} {v}" for k, v in counts.items())
    click.echo(
        f"区划已载入：新增或更新 {changed} 条（现有 {summary}），用时 {time.perf_counter() - started:.2f} 秒"
    )


@catalog_cli.command("import-items")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--district", default=None, help="区县 6 位代码（默认取 DISTRICT_CODE，即 321203）")
@click.option("--levels", default="4", show_default=True, help="新建基本目录事项的行使层级，如 4,5,6")
@click.option(
    "--uscc-map",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="部门与统一社会信用代码对照 CSV（列 department,uscc），用于 CSV 中没有 department_uscc 列的部门",
)
@click.option(
    "--department-map",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="来源部门与本区部门名称对照 CSV（列 source_department,department），也用作事项的主管部门",
)
@click.option("--no-progress", is_flag=True, help="不显示进度条")
def import_items_command(
    file: Path,
    district: str | None,
    levels: str,
    uscc_map: Path | None,
    department_map: Path | None,
    no_progress: bool,
) -> None:
    """导入区县政务服务事项目录 CSV：实施部门、基本目录事项和县级实施清单（已发布）。

    新实施部门须有统一社会信用代码（CSV 的 department_uscc 列或 --uscc-map 对照文件），缺少的行
    被拒绝，绝不自行编造。有问题的行逐行报告（行号和原因）且不写入，其余行照常导入；重复运行不会
    产生重复数据。
    """
    settings = current_app.extensions["gaogang.settings"]
    district = district or settings.district_code
    started = time.perf_counter()
    try:
        usccs = read_uscc_map(uscc_map) if uscc_map else None
        names = read_department_map(department_map) if department_map else None
        with _db().transaction() as session:
            report = import_items_csv(
                session,
                file,
                district,
                progress=not no_progress,
                use_levels=levels,
                department_usccs=usccs,
                department_names=names,
            )
    except DomainError as error:
        _fail(error)
        return
    elapsed = time.perf_counter() - started
    click.echo(
        f"导入完成：{report.rows} 行，新建实施清单 {report.created}，已存在跳过 {report.skipped}，"
        f"更新 {report.updated}；新建基本目录事项 {report.items_created}、"
        f"实施部门 {report.departments_created}；"
        f"错误 {len(report.errors)} 行；用时 {elapsed:.2f} 秒"
    )
    for line, reason in report.errors:
        click.echo(f"  第 {line} 行：{reason}", err=True)
    if report.errors:
        raise SystemExit(2)


@catalog_cli.command("check")
@click.option("--no-progress", is_flag=True, help="不显示进度条")
@click.option("--by", type=click.Choice(["department", "town"]), default="department", show_default=True,
              help="按部门或按镇街汇总得分")
def check_command(no_progress: bool, by: str) -> None:
    """事项要素质量检查：对全部实施清单运行质量规则，按部门或镇街汇总得分（只读）。"""
    started = time.perf_counter()

    def progress(rows: list[Any]) -> Any:
        return tqdm(rows, desc="质量检查", unit="项", disable=no_progress, file=sys.stderr)

    with _db().transaction() as session:
        checks = quality_report.check_catalogue(session, progress)
        groups = quality_report.scores(session, checks, by)
    overall = quality_report.total(checks)
    click.echo(
        f"检查实施清单 {overall.entries} 项：无错误 {overall.clean} 项（得分 {overall.score:.1%}），"
        f"错误 {overall.errors} 条，提示 {overall.warnings} 条；用时 {time.perf_counter() - started:.2f} 秒"
    )
    click.echo(quality_report.SCORE_DEFINITION)
    if overall.by_code:
        click.echo("按规则：")
        for code, n in sorted(overall.by_code.items(), key=lambda kv: (-kv[1], kv[0])):
            click.echo(f"  {code}  {quality.RULE_TITLES.get(code, code)}：{n}")
    click.echo("按部门：" if by == "department" else "按镇街：")
    for g in groups:
        click.echo(f"  {g.label}：{g.entries} 项，得分 {g.score:.1%}，错误 {g.errors}，提示 {g.warnings}")


UPPER_LEVEL_OPTION = {"province": "2", "city": "3"}


def _echo_upper_report(what: str, report: UpperImportReport) -> None:
    click.echo(
        f"{what}导入完成：{report.rows} 行，新增 {report.created}，更新 {report.updated}，"
        f"未变 {report.unchanged}" + (f"；关联本区基本目录事项 {report.linked} 项" if report.linked else "")
    )
    click.echo(f"来源说明：{report.provenance}")


def _fail_lines(error: DomainError) -> None:
    """A refused file: one line per bad row (第 N 行：...), then a non-zero exit."""
    lines = error.details.get("lines") if isinstance(error.details, dict) else None
    if not lines:
        # The message names the file, its line and the problem in full; the details' keys are English.
        raise click.ClickException(error.message)
    click.echo(f"错误：{error.message.split('：')[0]}", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    raise SystemExit(2)


@catalog_cli.command("import-basic")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--level",
    required=True,
    type=click.Choice(sorted(UPPER_LEVEL_OPTION)),
    help="上级目录层级：province 省级，city 市级",
)
@click.option("--provenance", default=None, help="文件来源说明（也可在文件开头以 # 注释写明；二者至少有一）")
def import_basic_command(file: Path, level: str, provenance: str | None) -> None:
    """导入省级或市级政务服务事项基本目录 CSV。

    列：基本编码、名称、事项类型，可选 设定依据、行使层级、主管部门（说明见 docs/catalog.md）。

    基本编码按原样保存；本区基本目录中编码（或来源编码）相同的事项随即关联到该上级事项，三级四同
    一致性报告据此对照。任何一行有误则整个文件不导入，并逐行列出行号和原因。
    """
    try:
        with _db().transaction() as session:
            report = import_basic_catalogue(
                session, users.cli_principal(), file, level=UPPER_LEVEL_OPTION[level], provenance=provenance
            )
    except DomainError as error:
        _fail_lines(error)
        return
    _echo_upper_report("上级基本目录", report)


@catalog_cli.command("import-no-contact-list")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--provenance", default=None, help="文件来源说明（也可在文件开头以 # 注释写明；二者至少有一）")
def import_no_contact_list_command(file: Path, provenance: str | None) -> None:
    """导入省级“不见面审批”标准清单 CSV（列：基本编码、名称，可选 事项类型），基本编码按原样保存。

    任何一行有误则整个文件不导入，并逐行列出行号和原因。
    """
    try:
        with _db().transaction() as session:
            report = import_no_contact_list(session, users.cli_principal(), file, provenance=provenance)
    except DomainError as error:
        _fail_lines(error)
        return
    _echo_upper_report("不见面审批标准清单", report)


@catalog_cli.command("no-contact-gaps")
def no_contact_gaps_command() -> None:
    """列出在省级不见面审批标准清单上、但在本区尚未实现不见面的已发布实施清单。"""
    with _db().transaction() as session:
        listed = no_contact_list_summary(session)["items"]
        gaps = no_contact_gaps(session)
    if not listed:
        click.echo("尚未导入省级不见面审批标准清单（flask catalog import-no-contact-list），无法对照")
        return
    for gap in gaps:
        click.echo(f"{gap.task_code}\t{gap.name}\t清单编码 {gap.list_code}")
    click.echo(f"共 {len(gaps)} 项在省级不见面审批标准清单上但本区不是不见面")


@catalog_cli.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="角色")
@click.option("--name", "display_name", default=None, help="显示名称（默认同用户名）")
@click.option(
    "--department-id", type=click.IntRange(1, 2**31 - 1), default=None, help="部门角色所属实施主体编号"
)
@click.option("--division", "division_code", default=None, help="镇村经办所属区划 12 位代码")
@click.password_option("--password", help="密码（至少 8 位；省略时交互输入）")
def create_user_command(
    username: str,
    role: str,
    display_name: str | None,
    department_id: int | None,
    division_code: str | None,
    password: str,
) -> None:
    """创建工作人员账号（与管理页面同一服务，审计记录的操作人为命令行）。"""
    try:
        with _db().transaction() as session:
            user, _generated = users.create_user(session, users.cli_principal(), users.NewUser(
                username=username, display_name=display_name or username, role=role, password=password,
                department_id=department_id, division_code=division_code))
            user_id = user.id
    except DomainError as error:
        _fail(error)
        return
    click.echo(f"已创建用户 {username}（编号 {user_id}，角色 {role}）")


@catalog_cli.command("set-user-active")
@click.argument("username")
@click.option("--active/--inactive", required=True, help="启用（--active）或停用（--inactive）账号")
def set_user_active_command(username: str, active: bool) -> None:
    """启用或停用工作人员账号。"""
    try:
        with _db().transaction() as session:
            user = users.find_user(session, username)
            users.set_user_active(session, users.cli_principal(), user.id or 0, active)
    except DomainError as error:
        _fail(error)
        return
    click.echo(f"已{'启用' if active else '停用'}用户 {username}")


@catalog_cli.command("create-token")
@click.argument("username")
@click.option("--name", "token_name", default="cli", show_default=True, help="令牌用途说明")
def create_token_command(username: str, token_name: str) -> None:
    """为用户签发 API 令牌（只显示这一次）。"""
    try:
        with _db().transaction() as session:
            user = users.find_user(session, username)
            _token, plain = users.issue_token(session, users.cli_principal(), user.id or 0, token_name)
    except DomainError as error:
        _fail(error)
        return
    click.echo(plain)


@catalog_cli.command("revoke-token")
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1))
def revoke_token_command(token_id: int) -> None:
    """吊销 API 令牌（令牌编号见用户管理页面）。"""
    try:
        with _db().transaction() as session:
            token = users.revoke_token(session, users.cli_principal(), token_id)
            prefix = token.prefix
    except DomainError as error:
        _fail(error)
        return
    click.echo(f"已吊销令牌 {prefix}…")


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(catalog_cli)
