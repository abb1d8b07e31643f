"""Core CLI: `flask audit verify` walks the audit hash chain and says where it breaks."""

from __future__ import annotations

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
    """Exit 0 when the chain is intact, 1 with the first broken row otherwise."""
    with database().transaction() as session:
        ok, count, broken = verify_chain(session)
    if ok:
        click.echo(f"审计日志完整：{count} 条记录，哈希链无断点")
        return
    click.echo(f"审计日志被篡改：第 {count} 条记录（id={broken}）的哈希不符", err=True)
    sys.exit(1)


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(audit)
