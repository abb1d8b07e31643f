"""Running the project's Alembic migrations in a test: a config for a URL, and an empty database on
SQLite or on the test PostgreSQL server (a database of the test's own, emptied)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config

from core.db import make_engine
from tests.conftest import _ensure_pg_database, pg_test_url

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    return cfg


def empty_database_url(dialect: str, tmp_path: Path, name: str) -> str:
    """An empty database named ``name``: a SQLite file under ``tmp_path``, or ``<test db>_<name>`` on
    the test PostgreSQL server with its public schema dropped and made again."""
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / f'{name}.db'}"
    url = sa.engine.make_url(pg_test_url())
    text = url.set(database=f"{url.database}_{name}").render_as_string(hide_password=False)
    _ensure_pg_database(text)
    engine = make_engine(text)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return text
