"""`flask demo load`: build the Gaogang demo from the real data once; later runs reuse it."""

from __future__ import annotations

import importlib
from typing import Any

import click
from flask import Flask
from flask.cli import with_appcontext

from core.web import database, settings


@click.group("demo", help="演示数据 (demo data)")
def demo() -> None:
    pass


@demo.command("load")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar while importing items.")
@with_appcontext
def load(progress: bool) -> None:
    """Load the Gaogang demo (divisions, items, claims, users, tokens); idempotent."""
    from demo import catalog_demo

    db = database()
    s = settings()
    summary = catalog_demo.load(db, s, progress=progress, echo=click.echo)
    if not summary.reused:
        click.echo(
            f"demo loaded: {summary.town_bodies} town/street bodies, "
            f"{summary.village_bodies} village bodies, "
            f"{summary.town_claims} town-level and {summary.village_claims} village-level claims, "
            f"{summary.no_contact} no-contact entries"
        )
        for line, reason in summary.import_errors[:20]:
            click.echo(f"  import: line {line}: {reason}", err=True)
    # The licence and reports parts build on the catalogue; each is idempotent on its own.
    for name in ("licences_demo", "reports_demo"):
        try:
            part = importlib.import_module(f"demo.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"demo.{name}":
                raise
            continue
        part.load(db, s)
        click.echo(f"{name.replace('_demo', '')} demo: done")


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(demo)
