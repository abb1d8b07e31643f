"""/verify without a database round trip per check (issue #15's throughput): the public facts of a
licence are kept per process for at most ``TTL_SECONDS`` (a change made elsewhere shows within that
bound, one made through this process at once), and the verification log is written in batches that
lose no row when the process stops normally."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, func, select

from core.db import Database
from core.types import utcnow
from licenses import types as licence_types
from licenses.models import Licence, LicenceVerification
from licenses.verification_cache import TTL_SECONDS, FactsCache
from licenses.verification_log import VerificationLog
from tests.factories.licences import auth, issue, world  # noqa: F401  (fixture)

MARK = "batch-test"  # the kid of the log rows these tests write
STATUS_LIST_MAX_AGE = 30  # licenses.api serves the status lists with this Cache-Control max-age


def _token(client, world, lid):  # noqa: F811
    return client.get(f"/api/v1/licences/{lid}/token", headers=auth(world["a"])).get_json()["token"]


def test_a_change_made_by_another_process_shows_on_verify_within_the_bound(
    app, client, world, db, monkeypatch  # noqa: F811
):
    now = [1000.0]
    facts = FactsCache(clock=lambda: now[0])
    facts.follow_changes(db.sessionmaker)
    monkeypatch.setitem(app.extensions, "licences.verify_facts", facts)
    lid = issue(client, world["a"]).get_json()["id"]
    token = _token(client, world, lid)
    assert client.get(f"/api/v1/licences/verify/{token}").get_json()["status"] == "valid"

    # Another worker process revokes it: a plain UPDATE this process's sessions do not see.
    with db.transaction() as session:
        session.execute(
            sa.update(Licence)
            .where(col(Licence.id) == lid)
            .values(status="revoked", status_category="penalty", status_date=licence_types.today())
        )
    now[0] += TTL_SECONDS - 1
    assert client.get(f"/api/v1/licences/verify/{token}").get_json()["status"] == "valid"  # cached
    now[0] += 1
    body = client.get(f"/api/v1/licences/verify/{token}").get_json()
    assert (body["valid"], body["status"], body["status_label"]) == (False, "revoked", "吊销")
    page = client.get(f"/verify/{token}").get_data(as_text=True)
    assert "证照无效" in page
    assert "吊销" in page
    # Issue #15: the status lists and /verify agree within one minute of a change.
    assert TTL_SECONDS + STATUS_LIST_MAX_AGE <= 60


def test_a_change_made_through_this_process_shows_at_once(app, client, world):  # noqa: F811
    lid = issue(client, world["a"]).get_json()["id"]
    token = _token(client, world, lid)
    assert client.get(f"/verify/{token}").status_code == 200  # now cached
    r = client.post(
        f"/api/v1/licences/{lid}/status",
        json={"status": "cancelled", "category": "holder_request", "reason": "持证人申请"},
        headers=auth(world["a"]),
    )
    assert r.status_code == 200, r.get_json()
    body = client.get(f"/api/v1/licences/verify/{token}").get_json()
    assert (body["valid"], body["status"]) == (False, "cancelled")


def _row(n: int) -> dict:
    return {"at": utcnow(), "licence_id": None, "valid": False, "status": None,
            "reason": f"batch test {n}", "kid": MARK, "channel": "page"}


def _count(db: Database) -> int:
    with db.transaction() as session:
        return session.exec(
            select(func.count()).select_from(LicenceVerification).where(LicenceVerification.kid == MARK)
        ).one()


def test_the_log_is_written_when_a_batch_fills_or_its_oldest_row_is_due_and_at_close(db):
    now = [0.0]
    log = VerificationLog(db, max_rows=3, max_age=1.0, background=False, clock=lambda: now[0])
    log.append(_row(1))
    log.append(_row(2))
    assert (_count(db), log.pending()) == (0, 2)
    log.append(_row(3))  # fills the batch
    assert (_count(db), log.pending()) == (3, 0)
    log.append(_row(4))
    now[0] += 1.0
    log.append(_row(5))  # the oldest has waited max_age
    assert (_count(db), log.pending()) == (5, 0)
    log.append(_row(6))
    log.close()  # a normal stop writes what waits
    assert (_count(db), log.pending()) == (6, 0)
    log.append(_row(7))  # after the stop began nobody else will write it
    assert _count(db) == 7


def test_rows_the_database_refuses_are_kept_for_the_next_write(db):
    dead = Database("postgresql+psycopg://postgres@127.0.0.1:9/nowhere", connect_args={"connect_timeout": 3})
    log = VerificationLog(dead, background=False)
    log.append(_row(1))
    log.append(_row(2))
    assert log.flush() == 0
    assert log.pending() == 2
    log.db = db  # the database is back
    assert log.flush() == 2
    assert _count(db) == 2
    dead.engine.dispose()
