"""The weekly rebuild of the reconciliation baseline (licenses.recon_state.rebuild) and a licence
written meanwhile, on PostgreSQL with two real connections: the writer waits for the rebuild's lock
and its change is in the baseline afterwards. Without the lock a change committed between the
rebuild's read of the outbox and its DELETEs was deleted and not put back.

Commits: runs on a database of its own (<test db>_reconlock, a fresh copy of the migrated template)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from core.db import Database
from licenses import recon_state
from tests.conftest import _ensure_pg_database, pg_test_url, reset_and_migrate_pg
from tests.factories.sync import issue_many, make_issuer


@pytest.fixture
def database() -> Iterator[Database]:
    url = sa.engine.make_url(pg_test_url())
    url_text = url.set(database=f"{url.database}_reconlock").render_as_string(hide_password=False)
    _ensure_pg_database(url_text)
    reset_and_migrate_pg(url_text)
    db = Database(url_text)
    yield db
    db.engine.dispose()


def test_a_licence_written_during_the_rebuild_waits_for_it_and_stays_in_the_baseline(
    database: Database,
) -> None:
    with database.transaction() as session:
        issuer = make_issuer(session)
        issue_many(session, issuer, 5)
    rebuilding = database.session()
    assert recon_state.rebuild(rebuilding).licences == 0  # holds the baseline tables until it commits
    written = threading.Event()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            with database.transaction() as session:
                issue_many(session, issuer, 1, seed=2)
            written.set()
        except BaseException as exc:  # the assertion below names it
            failed.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert not written.wait(1.5), "the licence was written while the rebuild held the baseline"
    finally:
        rebuilding.commit()
        rebuilding.close()
    writer.join(timeout=60)
    assert not failed, failed
    assert written.is_set()
    with database.transaction() as session:
        drift = recon_state.rebuild(session)
    assert (drift.licences, drift.days) == (0, 0)  # the writer's change is in the kept baseline
