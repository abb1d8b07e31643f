"""`flask demo load`: build the Gaogang demo from the real data once; later runs reuse it."""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext

from core.web import database, settings


@click.group("demo", help="演示数据 (demo data)")
def demo() -> None:
    pass


@demo.command("load")
@with_appcontext
def load() -> None:
    from demo import catalog_demo

    db = database()
    s = settings()
    catalog_demo.load(db, s)
    try:
        from demo import licences_demo
    except ImportError:
        return
    licences_demo.load(db, s)


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(demo)
