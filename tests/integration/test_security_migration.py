"""The migration that moves failed logins to login_failure keeps current counts and locks (stored
under the name's digest) and gives every user session epoch 0; it also goes back down."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from core.db import make_engine
from tests.factories.migrations import alembic_config, empty_database_url

BEFORE = "b02311bfa7a4"
THIS = "d0d8ce8f3bdd"


_config = alembic_config


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database_url(request.param, tmp_path, "migration")


def _utc(value: datetime | str | None) -> datetime | None:
    """A timestamp as read back by plain SQL: SQLite gives the stored UTC text, PostgreSQL a datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def test_failed_logins_and_locks_survive_the_upgrade(empty_url: str) -> None:
    cfg = _config(empty_url)
    command.upgrade(cfg, BEFORE)
    engine = make_engine(empty_url)
    locked_until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    created = datetime(2026, 11, 1, tzinfo=UTC)
    with engine.begin() as conn:
        users = (("locked_one", 5, locked_until), ("counting", 3, None), ("clean", 0, None))
        for name, failures, lock in users:
            conn.execute(
                sa.text(
                    "INSERT INTO app_user (username, display_name, password_hash, role, is_active, "
                    "failed_logins, locked_until, created_at) VALUES (:u, :u, 'x', 'admin', true, :f, :l, :c)"
                ),
                {"u": name, "f": failures, "l": lock, "c": created},
            )
    command.upgrade(cfg, THIS)
    with engine.connect() as conn:
        rows = {
            digest: (count, _utc(lock))
            for digest, count, lock in conn.execute(
                sa.text("SELECT name_digest, failed_count, locked_until FROM login_failure")
            )
        }
        epochs = set(conn.execute(sa.text("SELECT session_epoch FROM app_user")).scalars())
    digest = {n: hashlib.sha256(n.encode()).hexdigest() for n in ("locked_one", "counting")}
    assert rows == {
        digest["locked_one"]: (5, locked_until),
        digest["counting"]: (3, None),
    }
    assert epochs == {0}
    command.downgrade(cfg, BEFORE)
    command.upgrade(cfg, "heads")
    engine.dispose()
