"""The migration that makes user names unique whatever their case (index uq_app_user_username_lower):
failure counts of accounts with capitals move to the case-blind key, names held twice stop the upgrade
before anything changes, and it goes back down; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from core.db import make_engine
from tests.factories.migrations import alembic_config, empty_database_url

BEFORE = "834838d12e0d"
THIS = "6c1c3ad14363"
CREATED = "2026-11-01 00:00:00+00:00"
LAST_FAILED = "2026-11-01 00:05:00+00:00"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return empty_database_url(request.param, tmp_path, "username_case")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _add_user(conn: sa.Connection, name: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO app_user (username, display_name, password_hash, role, is_active, session_epoch,"
            " created_at) VALUES (:u, :u, 'x', 'admin', true, 0, :c)"
        ),
        {"u": name, "c": CREATED},
    )


def _add_failures(conn: sa.Connection, name: str, count: int) -> None:
    conn.execute(
        sa.text("INSERT INTO login_failure (name_digest, failed_count, last_failed_at) VALUES (:d, :n, :t)"),
        {"d": _digest(name), "n": count, "t": LAST_FAILED},
    )


def _failures(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("SELECT name_digest, failed_count FROM login_failure")).all())


def _version(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())


def test_counts_move_to_the_case_blind_key_and_a_second_case_is_refused(empty_url: str) -> None:
    cfg = alembic_config(empty_url)
    command.upgrade(cfg, BEFORE)
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        _add_user(conn, "Mixed.Clerk")
        _add_user(conn, "plain_clerk")
        _add_failures(conn, "Mixed.Clerk", 3)  # the account's own count
        _add_failures(conn, "mixed.clerk", 1)  # a name that named no account before
        _add_failures(conn, "plain_clerk", 2)
    command.upgrade(cfg, THIS)
    assert _failures(engine) == {_digest("mixed.clerk"): 3, _digest("plain_clerk"): 2}
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        _add_user(conn, "PLAIN_clerk")

    command.downgrade(cfg, BEFORE)
    assert _failures(engine) == {_digest("Mixed.Clerk"): 3, _digest("plain_clerk"): 2}
    with engine.begin() as conn:
        _add_user(conn, "PLAIN_clerk")  # allowed again without the index
        conn.execute(sa.text("DELETE FROM app_user WHERE username = 'PLAIN_clerk'"))
    command.upgrade(cfg, "heads")
    engine.dispose()


def test_names_held_twice_stop_the_upgrade_before_anything_changes(empty_url: str) -> None:
    cfg = alembic_config(empty_url)
    command.upgrade(cfg, BEFORE)
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        for name in ("atk_ed1", "ATK_ED1", "Capital.One"):
            _add_user(conn, name)
        _add_failures(conn, "Capital.One", 2)
    with pytest.raises(RuntimeError) as caught:
        command.upgrade(cfg, THIS)
    message = str(caught.value)
    assert "'atk_ed1' (id 1), 'ATK_ED1' (id 2)" in message
    assert "Capital.One" not in message
    assert "Nothing was changed" in message
    assert _version(engine) == BEFORE
    assert _failures(engine) == {_digest("Capital.One"): 2}  # not moved

    with engine.begin() as conn:  # what the operator does: rename one of them
        conn.execute(sa.text("UPDATE app_user SET username = 'atk_ed1_b' WHERE id = 2"))
    command.upgrade(cfg, THIS)
    assert _version(engine) == THIS
    assert _failures(engine) == {_digest("capital.one"): 2}
    engine.dispose()
