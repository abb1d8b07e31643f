"""Backup and restore: issue licences, back up, restore into a fresh database, find every licence.

These tests commit real data, so they use databases of their own (SQLite files, and PostgreSQL
databases named after the test database with an ``_ops_src`` / ``_ops_dst`` suffix).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from core.audit import verify_chain
from core.db import Database
from licenses import issuing
from licenses.models import Licence
from tests.conftest import _ensure_pg_database, make_settings, migrate, pg_test_url, reset_and_migrate_pg
from tests.factories.sync import issue_many, make_issuer
from webapp import create_app


def _pg_url(suffix: str) -> str:
    base = sa.engine.make_url(pg_test_url())
    return base.set(database=f"{base.database}_{suffix}").render_as_string(hide_password=False)


def _empty_pg(url: str) -> None:
    _ensure_pg_database(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Database]]:
    """A migrated source database and an empty target database of the same kind."""
    if request.param == "sqlite":
        src_url = f"sqlite:///{tmp_path / 'source.db'}"
        migrate(src_url)
        dst_url = f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        src_url, dst_url = _pg_url("ops_src"), _pg_url("ops_dst")
        _ensure_pg_database(src_url)
        reset_and_migrate_pg(src_url)
        _empty_pg(dst_url)
    source, target = Database(src_url), Database(dst_url)
    yield source, target
    source.engine.dispose()
    target.engine.dispose()


def _issue_licences(source: Database) -> None:
    with source.transaction() as session:
        issuer = make_issuer(session)
        ids = issue_many(session, issuer, 40, seed=7)
        issuing.revoke_licence(session, issuer.actor, ids[0], "备份测试：吊销一张")
        issuing.suspend_licence(session, issuer.actor, ids[1], "备份测试：暂停一张")


def _licence_rows(db: Database) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(Licence.__table__).order_by(Licence.__table__.c.id))]


def _cli(db: Database, tmp_path: Path, *args: str):
    app = create_app(make_settings(tmp_path, db.url), database=db)
    return app.test_cli_runner().invoke(args=["ops", *args])


def test_backup_restored_into_a_fresh_database_holds_every_licence(databases, tmp_path):
    source, target = databases
    _issue_licences(source)
    before = _licence_rows(source)
    assert len(before) >= 40

    backup = tmp_path / "backups" / "gaogang.dump"
    result = _cli(source, tmp_path, "backup", str(backup))
    assert result.exit_code == 0, result.output
    assert backup.stat().st_size > 0
    assert f"licence: {len(before)}" in result.output

    # Writes after the backup are not in it.
    with source.transaction() as session:
        issue_many(session, make_issuer(session, "区卫生健康委员会"), 3, seed=8)
    assert len(_licence_rows(source)) == len(before) + 3

    result = _cli(target, tmp_path, "restore", str(backup))
    assert result.exit_code == 0, result.output
    assert f"licence: {len(before)}" in result.output

    assert _licence_rows(target) == before
    with Session(target.engine) as session:
        ok, count, broken = verify_chain(session)
        assert ok, broken
        assert count > 0
        statuses = set(session.execute(sa.select(Licence.status)).scalars())
        assert {"revoked", "suspended"} <= statuses
        # The restored database is fully usable: the schema is at the migrations' head.
        revision = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        assert revision


def test_restore_refuses_a_database_that_is_not_empty(databases, tmp_path):
    source, _target = databases
    backup = tmp_path / "b.dump"
    assert _cli(source, tmp_path, "backup", str(backup)).exit_code == 0
    result = _cli(source, tmp_path, "restore", str(backup))
    assert result.exit_code == 1
    assert "目标数据库不是空的" in result.output


def test_backup_never_overwrites_an_existing_file(databases, tmp_path):
    source, _target = databases
    existing = tmp_path / "keep.dump"
    existing.write_bytes(b"precious")
    result = _cli(source, tmp_path, "backup", str(existing))
    assert result.exit_code == 1
    assert "已存在" in result.output
    assert existing.read_bytes() == b"precious"


def test_restore_rejects_a_file_that_is_not_a_backup_and_leaves_the_target_empty(databases, tmp_path):
    _source, target = databases
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not a backup at all, just some text\n" * 10)
    result = _cli(target, tmp_path, "restore", str(junk))
    assert result.exit_code == 1
    assert "不是" in result.output
    assert sa.inspect(target.engine).get_table_names() == []


def test_restore_of_a_missing_file_says_so(databases, tmp_path):
    _source, target = databases
    result = _cli(target, tmp_path, "restore", str(tmp_path / "nope.dump"))
    assert result.exit_code == 1
    assert "备份文件不存在" in result.output
