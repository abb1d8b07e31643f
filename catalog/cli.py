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
from catalog.importer import import_items_csv, read_uscc_map
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
@click.option("--no-progress", is_flag=True, help="不显示进度条")
def import_items_command(
    file: Path, district: str | None, levels: str, uscc_map: Path | None, no_progress: bool
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
        with _db().transaction() as session:
            report = import_items_csv(
                session, file, district, progress=not no_progress, use_levels=levels, department_usccs=usccs
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
