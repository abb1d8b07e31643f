"""`flask licences ...`: bulk import of historical licences and the national licence types of data/.

Synthetic licences are not made here: the demo and the benchmarks generate them (demo/).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlmodel import select
from tqdm import tqdm

from catalog.models import Department
from core.auth import SYSTEM, user_by_name
from core.db import id_of
from core.errors import DomainError
from core.web import database, settings
from licenses.grants import grant_licence_rights, revoke_licence_rights
from licenses.reference import NATIONAL_TYPES_CSV, load_reference_types
from licenses.signing import KeyStore
from licenses.verification import publish_keys, rotate_signing_key, rotate_status_list_key


@click.group("licences", help="电子证照：批量导入历史证照、载入国家证照类型")
def licences() -> None:
    pass


def _department(uscc: str) -> int:
    with database().transaction() as session:
        dept = session.exec(select(Department).where(Department.uscc == uscc)).first()
        if dept is None:
            raise click.ClickException(f"找不到统一社会信用代码为 {uscc} 的部门")
        return dept.id or 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


@licences.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--department", "uscc", required=True, help="颁发部门的统一社会信用代码")
@click.option("--chunk", default=5000, show_default=True, type=click.IntRange(100, 50000),
              help="每批写入的行数")
@with_appcontext
def import_file(file: Path, uscc: str, chunk: int) -> None:
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
                keystore=_keystore(),
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


@licences.command("load-types")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=NATIONAL_TYPES_CSV,
    show_default=True,
    help="证照类型参考文件（列见 data/README.md）",
)
@click.option("--include-inferred", is_flag=True, help="同时载入依上下文推断（confidence=inferred）的代码")
@with_appcontext
def load_types_command(path: Path, include_inferred: bool) -> None:
    """载入参考文件中的国家证照类型（真实名称与代码）；已有的类型不变，可重复运行。"""
    try:
        with database().transaction() as session:
            added = load_reference_types(session, SYSTEM, path, include_inferred=include_inferred)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"新增证照类型 {added} 个")


def _keystore() -> KeyStore:
    store: KeyStore = current_app.extensions["licences.keystore"]
    return store


@licences.command("rotate-key")
@click.option("--department", "uscc", help="颁发部门的统一社会信用代码：更换该部门签发核验令牌的密钥")
@click.option("--status-list", is_flag=True, help="更换本实例签署证照状态列表的密钥")
@with_appcontext
def rotate_key_command(uscc: str | None, status_list: bool) -> None:
    """生成新的签名密钥（--department 部门令牌密钥，或 --status-list 状态列表密钥）；旧密钥停用但继续公布，
    仍可核验其签发的令牌（直至相关证照到期）和状态列表。"""
    if bool(uscc) == status_list:
        raise click.UsageError("请指定 --department <统一社会信用代码> 或 --status-list 二者之一")
    try:
        with database().transaction() as session:
            if status_list:
                old_sl, new_sl = rotate_status_list_key(session, SYSTEM, _keystore())
                old_kid, new_kid, until = (old_sl.kid if old_sl else None), new_sl.kid, None
            else:
                old, new = rotate_signing_key(session, SYSTEM, _keystore(), uscc or "")
                old_kid, new_kid = (old.kid if old else None), new.kid
                until = old.verify_until if old else None
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    if old_kid and status_list:
        click.echo(
            f"旧状态列表密钥 {old_kid} 已停用（继续公布，可核验此前签署的状态列表），新密钥 {new_kid} 已公布"
        )
    elif old_kid:
        click.echo(f"旧密钥 {old_kid} 已停用（可核验至 {until or '长期'}），新密钥 {new_kid} 已公布")
    else:
        click.echo(f"新密钥 {new_kid} 已公布")


@licences.command("publish-keys")
@with_appcontext
def publish_keys_command() -> None:
    """为已颁发证照但尚未公布签名公钥的部门公布公钥（可重复运行）。"""
    with database().transaction() as session:
        added = publish_keys(session, _keystore())
    click.echo(f"新公布 {added} 个部门的签名公钥")


def _user_id(session: Any, username: str) -> int:
    user = user_by_name(session, username)  # names are unique case-blind, as at sign-in
    if user is None:
        raise click.ClickException(f"用户 {username} 不存在")
    return id_of(user)


@licences.command("grant")
@click.argument("username")
@click.option("--type", "type_codes", multiple=True, required=True, help="证照类型代码，可重复")
@with_appcontext
def grant_command(username: str, type_codes: tuple[str, ...]) -> None:
    """授予用户在其所属部门办理这些证照类型的权限（颁发、变更、状态变更）。"""
    try:
        with database().transaction() as session:
            grants = grant_licence_rights(
                session, SYSTEM, user_id=_user_id(session, username), type_codes=type_codes
            )
    except DomainError as exc:
        raise click.ClickException(f"{exc.message}：{exc.details}" if exc.details else exc.message) from None
    click.echo(f"{username} 现有 {len(grants)} 个证照类型的办理权限（本次指定的）")


@licences.command("revoke-grant")
@click.argument("username")
@click.option("--type", "type_codes", multiple=True, help="证照类型代码，可重复；不指定则收回全部")
@with_appcontext
def revoke_grant_command(username: str, type_codes: tuple[str, ...]) -> None:
    """收回用户的证照办理权限。"""
    try:
        with database().transaction() as session:
            ended = revoke_licence_rights(
                session, SYSTEM, user_id=_user_id(session, username), type_codes=type_codes or None
            )
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"已收回 {ended} 项证照办理权限")


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(licences)
