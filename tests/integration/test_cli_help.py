"""Every production `flask` command, group and option explains itself in Chinese."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import click

CJK = re.compile(r"[\u4e00-\u9fff]")


def _walk(command: click.Command, path: list[str]) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _walk(sub, [*path, name])


def test_every_command_and_option_has_chinese_help(app: Any) -> None:
    english = []
    commands = [pair for name, cmd in app.cli.commands.items() for pair in _walk(cmd, [name])]
    assert len(commands) > 20
    for path, command in commands:
        if not CJK.search(command.help or command.short_help or ""):
            english.append(f"flask {path}: {command.help!r}")
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not CJK.search(param.help or ""):
                english.append(f"flask {path} {'/'.join(param.opts)}: {param.help!r}")
    assert english == []


def test_openapi_help_is_shown_in_chinese(app: Any) -> None:
    result = app.test_cli_runner().invoke(args=["openapi", "write", "--help"])
    assert result.exit_code == 0
    assert "把 OpenAPI 文档写入文件" in result.output
