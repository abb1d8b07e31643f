"""The daily 电子监察 refresh as a real Celery worker runs it: `workers.refresh_case_warnings` sent
through Redis to `celery worker` (the beat schedule's task, tests/unit/test_case_beat.py) recomputes
an open case's warning as of today and writes its audit row; a second run changes nothing.

Commits to its own database (<test db>_cases_worker) and Redis database 6 (shifted per xdist worker).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from celery_app import make_celery
from core.auth import SYSTEM
from core.config import Settings
from core.db import Database
from reports import cases
from tests.conftest import _ensure_pg_database, pg_test_url, redis_db, reset_and_migrate_pg
from tests.factories.catalog import make_department, published_entry
from tests.factories.sync import Worker, redis_base

pytestmark = pytest.mark.worker


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Database, Settings]]:
    url = sa.engine.make_url(pg_test_url())
    url_text = url.set(database=f"{url.database}_cases_worker").render_as_string(hide_password=False)
    _ensure_pg_database(url_text)
    reset_and_migrate_pg(url_text)
    db = Database(url_text)
    redis_url = f"{redis_base()}/{redis_db(6)}"
    redis.Redis.from_url(redis_url).flushdb()
    # No registry is needed: the worker's sweep finds no outbox rows.
    worker = Worker(tmp_path, url_text, redis_url, "http://127.0.0.1:9").start()
    try:
        yield (
            db,
            Settings(database_url=url_text, instance_dir=tmp_path, secret_key="test", redis_url=redis_url),
        )
    finally:
        worker.stop()
        redis.Redis.from_url(redis_url).flushdb()
        db.engine.dispose()


def _audits(db: Database) -> list[dict[str, object]]:
    with db.transaction() as session:
        rows = session.execute(
            sa.text("SELECT new FROM audit_log WHERE action = 'reports.refresh_case_warnings' ORDER BY id")
        ).scalars()
        return [dict(r) for r in rows]


def _wait_for_audits(db: Database, n: int, timeout: float = 90) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _audits(db)
        if len(found) >= n:
            return found
        time.sleep(0.5)
    raise AssertionError(f"the worker did not run the refresh {n} time(s) within {timeout} s")


def test_worker_refreshes_an_open_case_to_red_and_a_second_run_changes_nothing(
    env: tuple[Database, Settings],
) -> None:
    db, settings = env
    with db.transaction() as session:
        entry = published_entry(session, make_department(session, "区测试局"))
        # Imported as of its acceptance day: no warning yet. Today it is long overdue.
        cases.import_cases(
            session,
            SYSTEM,
            [
                (
                    1,
                    {
                        "project_no": "W-1",
                        "task_code": entry.task_code,
                        "accept_date": "2026-03-02",
                        "channel": "online",
                    },
                )
            ],
            today=date(2026, 3, 2),
        )
    with db.transaction() as session:
        assert session.execute(sa.text("SELECT warning FROM report_case")).scalar_one() is None
    publisher = make_celery(settings, publisher=True)
    publisher.send_task("workers.refresh_case_warnings", queue="default")
    first = _wait_for_audits(db, 1)[0]
    assert (first["checked"], first["changed"], first["red"]) == (1, 1, 1)
    with db.transaction() as session:
        assert session.execute(sa.text("SELECT warning FROM report_case")).scalar_one() == "red"
    publisher.send_task("workers.refresh_case_warnings", queue="default")
    second = _wait_for_audits(db, 2)[1]
    assert (second["checked"], second["changed"]) == (1, 0)
