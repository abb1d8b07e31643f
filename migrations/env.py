"""Alembic environment: the URL comes from config attributes (tests) or Settings (everyone else)."""

from __future__ import annotations

import importlib
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import Connection
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
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
