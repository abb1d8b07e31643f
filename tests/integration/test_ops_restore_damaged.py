"""`flask ops restore` of a SQLite backup cut short in transit: a clear message, and neither a target
database file nor -wal/-shm files next to the backup are left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from core.db import Database
from tests.conftest import _ensure_pg_database, make_settings, migrate, pg_test_url, reset_and_migrate_pg
from webapp import create_app


def _cli(db: Database, tmp_path: Path, *args: str):
    app = create_app(make_settings(tmp_path, db.url), database=db)
    return app.test_cli_runner().invoke(args=["ops", *args])


def test_a_truncated_sqlite_backup_is_refused_and_leaves_nothing_behind(tmp_path):
    source = Database(f"sqlite:///{tmp_path / 'source.db'}")
    migrate(source.url)
    backup = tmp_path / "backups" / "gaogang.db"
    assert _cli(source, tmp_path, "backup", str(backup)).exit_code == 0
    source.engine.dispose()
    truncated = tmp_path / "backups" / "truncated.db"
    data = backup.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])

    target_path = tmp_path / "restored.db"
    target = Database(f"sqlite:///{target_path}")
    result = _cli(target, tmp_path, "restore", str(truncated))
    target.engine.dispose()

    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"{truncated} 不是完整的 SQLite 备份" in result.output
    assert "未做任何恢复" in result.output
    assert sorted(p.name for p in tmp_path.glob("restored.db*")) == []
    assert sorted(p.name for p in truncated.parent.iterdir()) == ["gaogang.db", "truncated.db"]


def test_a_restore_into_a_new_file_still_works(tmp_path):
    source = Database(f"sqlite:///{tmp_path / 'source.db'}")
    migrate(source.url)
    backup = tmp_path / "backups" / "gaogang.db"
    assert _cli(source, tmp_path, "backup", str(backup)).exit_code == 0
    source.engine.dispose()
    target = Database(f"sqlite:///{tmp_path / 'restored.db'}")
    result = _cli(target, tmp_path, "restore", str(backup))
    target.engine.dispose()
    assert result.exit_code == 0, result.output
    assert "app_user: 0" in result.output
    assert sorted(p.name for p in backup.parent.iterdir()) == ["gaogang.db"]


def _pg_database(suffix: str) -> Database:
    base = sa.engine.make_url(pg_test_url())
    url = base.set(database=f"{base.database}_{suffix}").render_as_string(hide_password=False)
    _ensure_pg_database(url)
    reset_and_migrate_pg(url)
    return Database(url)


def _tables(db: Database) -> list[str]:
    return sorted(sa.inspect(db.engine).get_table_names())


def _foreign_backup(tmp_path: Path, dialect: str) -> Path:
    """A sound backup of some other database: one table that is not this platform's."""
    if dialect == "sqlite":
        foreign = Database(f"sqlite:///{tmp_path / 'foreign.db'}")
    else:
        base = sa.engine.make_url(pg_test_url())
        url = base.set(database=f"{base.database}_ops_foreign").render_as_string(hide_password=False)
        _ensure_pg_database(url)
        foreign = Database(url)
        with foreign.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    with foreign.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (body text)"))
    backup = tmp_path / f"foreign-{dialect}.backup"
    assert _cli(foreign, tmp_path, "backup", str(backup)).exit_code == 0
    foreign.engine.dispose()
    return backup


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_forced_restore_of_another_databases_backup_is_refused_and_changes_nothing(tmp_path, dialect):
    if dialect == "sqlite":
        current = Database(f"sqlite:///{tmp_path / 'current.db'}")
        migrate(current.url)
    else:
        current = _pg_database("ops_current")
    before = _tables(current)
    backup = _foreign_backup(tmp_path, dialect)

    result = _cli(current, tmp_path, "restore", "--force", str(backup))

    assert result.exit_code == 1, result.output
    assert "不是本平台数据库的备份" in result.output
    assert "未做任何恢复" in result.output
    assert _tables(current) == before
    current.engine.dispose()


def test_a_forced_restore_of_a_truncated_postgresql_backup_leaves_the_database_as_it_was(tmp_path):
    current = _pg_database("ops_current")
    backup = tmp_path / "gaogang.dump"
    assert _cli(current, tmp_path, "backup", str(backup)).exit_code == 0
    data = backup.read_bytes()
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    before = _tables(current)
    with current.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()

    result = _cli(current, tmp_path, "restore", "--force", str(truncated))

    assert result.exit_code == 1, result.output
    assert "不是完整的备份" in result.output
    assert _tables(current) == before
    with current.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == version
    current.engine.dispose()
