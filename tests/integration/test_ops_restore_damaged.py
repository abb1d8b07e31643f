"""`flask ops restore` of a SQLite backup cut short in transit: a clear message, and neither a target
database file nor -wal/-shm files next to the backup are left behind."""

from __future__ import annotations

from pathlib import Path

from core.db import Database
from tests.conftest import make_settings, migrate
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
