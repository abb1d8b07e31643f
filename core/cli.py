"""Core CLI: `flask audit verify` walks the audit hash chain and says where it breaks; the help of
flask-smorest's `flask openapi` commands in Chinese like every other command."""

from __future__ import annotations

import copy
import sys
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext

from core.audit import verify_chain
from core.web import database


@click.group("audit", help="审计日志 (audit log)")
def audit() -> None:
    pass


@audit.command("verify")
@with_appcontext
def verify() -> None:
    """校验审计日志哈希链：完整时退出码 0，否则给出第一条断开的记录并以 1 退出。"""
    with database().transaction() as session:
        ok, count, broken = verify_chain(session)
    if ok:
        click.echo(f"审计日志完整：{count} 条记录，哈希链无断点")
        return
    click.echo(f"审计日志被篡改：第 {count} 条记录（id={broken}）的哈希不符", err=True)
    sys.exit(1)


OPENAPI_HELP = {
    "": "OpenAPI 接口文档",
    "print": "输出 OpenAPI 文档（JSON 或 YAML）",
    "write": "把 OpenAPI 文档写入文件",
    "list-config-prefixes": "列出可用的 API 配置前缀",
}
OPENAPI_OPTION_HELP = {"format": "输出格式：json 或 yaml", "config_prefix": "API 配置前缀（多个 API 时使用）"}


def _openapi_group_in_chinese(app: Flask) -> None:
    """Replace flask-smorest's `openapi` group by a copy with Chinese help (its module-level objects
    stay untouched, so another app in the same process is not affected)."""
    original = app.cli.commands.get("openapi")
    if not isinstance(original, click.Group):
        return
    group = copy.copy(original)
    group.help = OPENAPI_HELP[""]
    group.commands = {}
    for name, command in original.commands.items():
        translated = copy.copy(command)
        translated.help = OPENAPI_HELP.get(name, command.help)
        translated.short_help = None
        translated.params = [copy.copy(param) for param in command.params]
        for param in translated.params:
            if isinstance(param, click.Option):
                param.help = OPENAPI_OPTION_HELP.get(param.name or "", param.help)
        group.add_command(translated, name)
    app.cli.commands["openapi"] = group


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(audit)
    _openapi_group_in_chinese(app)
