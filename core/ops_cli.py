"""`flask ops backup` / `flask ops restore`: consistent copies of the database, and their restore.

SQLite uses the online backup API (a consistent copy while the app keeps writing, WAL included);
PostgreSQL uses ``pg_dump -Fc`` / ``pg_restore``. See docs/operations.md for the procedure.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import with_appcontext

from core.db import Database
from core.web import database

# Tables whose row counts are printed after a backup or a restore, so an operator can compare.
SUMMARY_TABLES = (
    "licence", "implementation_entry", "catalog_item", "licence_outbox", "audit_log", "app_user",
)
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# Every database of this platform has it (Alembic); a file without it is some other database's copy.
MARKER_TABLE = "alembic_version"


class OpsError(click.ClickException):
    """A backup or restore could not be done; the message says why (exit code 1)."""


def _sqlite_path(db: Database) -> Path:
    path = db.engine.url.database
    if not path or path == ":memory:":
        raise OpsError("内存中的 SQLite 数据库无法备份")
    return Path(path)


def _pg_env_and_dsn(db: Database) -> tuple[dict[str, str], str]:
    """libpq connection for pg_dump/pg_restore; the password goes through the environment only."""
    url = db.engine.url
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    dsn = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return env, dsn


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise OpsError(f"找不到 {name}：请安装与服务器主版本一致的 PostgreSQL 客户端 (postgresql-client)")
    return found


def _run(cmd: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        detail = result.stderr.strip()[-2000:]
        raise OpsError(f"{Path(cmd[0]).name} 失败（退出码 {result.returncode}）：{detail}")


def table_counts(engine: sa.Engine) -> dict[str, int]:
    names = set(sa.inspect(engine).get_table_names())
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table in SUMMARY_TABLES:
            if table in names:
                counts[table] = conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()  # noqa: S608
    return counts


def _user_tables(engine: sa.Engine) -> list[str]:
    return [t for t in sa.inspect(engine).get_table_names() if not t.startswith("sqlite_")]


def backup_database(db: Database, output: Path) -> dict[str, int]:
    """Write a consistent backup of ``db`` to ``output``; returns the row counts it contains."""
    output = output.resolve()
    if output.exists():
        raise OpsError(f"{output} 已存在：请指定新的文件名，备份不会覆盖已有文件")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if db.dialect == "sqlite":
            source = sqlite3.connect(_sqlite_path(db))
            target = sqlite3.connect(partial)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
        elif db.dialect == "postgresql":
            env, dsn = _pg_env_and_dsn(db)
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                  f"--file={partial}", dsn], env)
        else:
            raise OpsError(f"不支持的数据库类型：{db.dialect}")
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return table_counts(db.engine)


def restore_database(db: Database, source: Path, *, force: bool = False) -> dict[str, int]:
    """Restore ``source`` into ``db`` (which must be empty unless ``force``); returns row counts."""
    source = source.resolve()
    if not source.is_file():
        raise OpsError(f"备份文件不存在：{source}")
    with source.open("rb") as f:
        head = f.read(16)
    target = _sqlite_path(db) if db.dialect == "sqlite" else None
    target_was_absent = target is not None and not target.exists()
    existing = _user_tables(db.engine)
    if existing and not force:
        raise OpsError(
            f"目标数据库不是空的（已有 {len(existing)} 张表，如 {existing[0]}）："
            "请恢复到新建的空数据库，或加 --force 先清空再恢复"
        )
    if db.dialect == "sqlite":
        if not head.startswith(SQLITE_MAGIC):
            raise OpsError(f"{source} 不是 SQLite 备份文件（pg_dump 的备份只能恢复到 PostgreSQL）")
        db.engine.dispose()
        try:
            _restore_sqlite(source, _sqlite_path(db))
        except BaseException:
            if target_was_absent:  # the engine's connection above made the file; leave nothing behind
                db.engine.dispose()
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)
            raise
    elif db.dialect == "postgresql":
        if not head.startswith(PGDUMP_MAGIC):
            raise OpsError(f"{source} 不是 pg_dump -Fc 生成的备份文件")
        db.engine.dispose()
        _restore_postgresql(db, source, clear=bool(existing))
    else:
        raise OpsError(f"不支持的数据库类型：{db.dialect}")
    return table_counts(db.engine)


def _restore_postgresql(db: Database, source: Path, *, clear: bool) -> None:
    """Restore the pg_dump archive ``source`` into ``db``, all or nothing, clearing it first if ``clear``.

    The whole archive is read (into an SQL script in a temporary directory) before the database is
    touched, so a truncated or damaged file, or the dump of another database, is an OpsError and the
    database is as it was. The clearing and the script then run in one transaction (psql -1, stopping
    at the first error): pg_restore alone cannot share a transaction with the DROP SCHEMA, which used
    to be committed before it ran, so a restore that failed left the database empty."""
    env, dsn = _pg_env_and_dsn(db)
    damaged = "{} 不是完整的备份（{}），可能在复制或传输中被截断或损坏：未做任何恢复"
    listing = subprocess.run(  # noqa: S603
        [_tool("pg_restore"), "--list", str(source)], env=env, capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise OpsError(damaged.format(source, listing.stderr.strip()[-500:]))
    if f" TABLE public {MARKER_TABLE} " not in listing.stdout:
        raise OpsError(f"{source} 不是本平台数据库的备份（没有 {MARKER_TABLE} 表）：未做任何恢复")
    with tempfile.TemporaryDirectory(prefix="gaogang-restore-") as scratch:
        script = Path(scratch) / "restore.sql"
        read = subprocess.run(  # noqa: S603
            [_tool("pg_restore"), "--no-owner", "--no-privileges", f"--file={script}", str(source)],
            env=env, capture_output=True, text=True, check=False,
        )
        if read.returncode != 0:
            raise OpsError(damaged.format(source, read.stderr.strip()[-500:]))
        clearing = ["--command=DROP SCHEMA public CASCADE; CREATE SCHEMA public;"] if clear else []
        _run([_tool("psql"), "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
              f"--dbname={dsn}", *clearing, f"--file={script}"], env)


def _restore_sqlite(source: Path, target: Path) -> None:
    """Copy the SQLite backup ``source`` over ``target``, once the whole backup has been read and found
    sound: a truncated or damaged file is an OpsError and ``target`` is not opened.

    A backup of a WAL database is marked WAL in its header, so even read-only SQLite would create
    -wal/-shm files next to it (and leave them behind when the file is damaged): it is opened
    ``immutable``, as it is never written to, unless a -wal file already lies next to it (a copy
    made by hand with its log), whose committed pages must be read too."""
    mode = "ro" if Path(f"{source}-wal").exists() else "ro&immutable=1"
    try:
        src = sqlite3.connect(f"file:{source}?mode={mode}", uri=True)
    except sqlite3.Error as exc:
        raise OpsError(f"{source} 无法作为 SQLite 数据库打开（{exc}）：未做任何恢复") from None
    try:
        try:
            check = src.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:  # e.g. "database disk image is malformed": cut short
            raise OpsError(
                f"{source} 不是完整的 SQLite 备份（{exc}），可能在复制或传输中被截断或损坏：未做任何恢复"
            ) from None
        if [tuple(row) for row in check] != [("ok",)]:
            found = "；".join(str(row[0]) for row in check[:5])
            raise OpsError(f"{source} 未通过 SQLite 完整性检查（{found}）：未做任何恢复")
        marker = src.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MARKER_TABLE,)
        ).fetchone()
        if marker is None:
            raise OpsError(f"{source} 不是本平台数据库的备份（没有 {MARKER_TABLE} 表）：未做任何恢复")
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        except sqlite3.Error as exc:
            raise OpsError(f"从 {source} 恢复到 {target} 失败：{exc}") from None
        finally:
            dst.close()
    finally:
        src.close()


def _echo_counts(counts: dict[str, Any]) -> None:
    for table, count in counts.items():
        click.echo(f"  {table}: {count}")


@click.group("ops", help="运维：备份与恢复 (operations: backup and restore)")
def ops() -> None:
    pass


@ops.command("backup")
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(output: Path) -> None:
    """把当前配置的数据库一致地备份到 OUTPUT（不会覆盖已有文件）。"""
    db = database()
    counts = backup_database(db, output)
    click.echo(f"已备份 {db.describe()} → {output}（{output.stat().st_size} 字节）")
    _echo_counts(counts)


@ops.command("restore")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="目标数据库非空时先清空（不可撤销）")
@with_appcontext
def restore_command(source: Path, force: bool) -> None:
    """把备份 SOURCE 恢复到当前配置的数据库（数据库须为空，除非使用 --force）。"""
    db = database()
    if force and sys.stdin.isatty():
        click.confirm(f"将清空 {db.describe()} 并从 {source} 恢复，确定吗？", abort=True)
    counts = restore_database(db, source, force=force)
    click.echo(f"已从 {source} 恢复到 {db.describe()}")
    _echo_counts(counts)


def register(app: Flask, api: Any) -> None:
    app.cli.add_command(ops)
