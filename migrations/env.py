"""Alembic environment: the URL comes from config attributes (tests) or Settings (everyone else)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic import context
from sqlalchemy import Connection, event
from sqlmodel import SQLModel

from core.config import Settings
from core.db import make_engine

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

ROOT = Path(__file__).resolve().parent.parent
# Every table lives in a module named models.py or *_models.py of our packages (not city_registry,
# which is another government's system with its own database).
for package in ("core", "catalog", "licenses", "workers", "reports"):
    for path in sorted((ROOT / package).glob("*models.py")):
        importlib.import_module(f"{package}.{path.stem}")
importlib.import_module("core.audit")
importlib.import_module("core.auth")
importlib.import_module("core.login")

target_metadata = SQLModel.metadata


def _url() -> str:
    return config.attributes.get("url") or Settings.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with _sqlite_foreign_keys_off(connection), context.begin_transaction():
        context.run_migrations()


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite, foreign keys are off while the migrations run and restored afterwards.

    A batch operation rebuilds a table (copy, DROP, RENAME); with foreign keys on (make_engine turns
    them on for every connection) dropping a table that other tables' rows point at fails with
    "FOREIGN KEY constraint failed" half-way, leaving ``_alembic_tmp_<table>`` behind, because SQLite
    DDL here is not transactional. SQLite's documented procedure for a rebuild is to switch foreign
    keys off around it. The pragma is a no-op inside a transaction, Alembic opens one transaction per
    migration on SQLite, and a migration may switch foreign keys on again itself (0974e69fbf2d does),
    so they are switched off each time a transaction begins, before SQLite has started one.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    raw: Any = connection.connection.driver_connection  # the sqlite3 connection, for its pragmas
    was_on = bool(raw.execute("PRAGMA foreign_keys").fetchone()[0])

    def off(_conn: Connection) -> None:
        raw.execute("PRAGMA foreign_keys=OFF")

    off(connection)
    event.listen(connection, "begin", off)
    try:
        yield
    finally:
        event.remove(connection, "begin", off)
        raw.execute(f"PRAGMA foreign_keys={'ON' if was_on else 'OFF'}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
