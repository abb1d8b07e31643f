"""One request id follows a licence change: web request -> outbox row -> worker log -> registry log.

The licence is issued through the API (Flask test client, rolled-back PostgreSQL), drained by the
worker's drain function to the real reference registry over HTTP (its own process and log file).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import Database
from licenses import issuing, sync
from licenses.models import LicenceOutbox
from tests.factories.licences import PERSON_TYPE, id_number, make_staff, make_types
from tests.factories.sync import KEY, RegistryProcess
from workers.registry_client import RegistryClient

T = LicenceOutbox.__table__


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    proc = RegistryProcess(tmp_path_factory.mktemp("registry")).start()
    yield proc
    proc.stop()


@pytest.fixture
def registry_client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.url, KEY, "321203", timeout=5)
    c.reset()
    yield c
    c.reset()
    c.close()


def _issue(client: Any, token: str, request_id: str) -> Any:
    body = {"type_code": PERSON_TYPE, "holder_name": "张三", "holder_code": id_number(11),
            "face": {"gender": "男", "work_type": "建筑电工"}}
    return client.post("/api/v1/licences", json=body,
                       headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id})


def test_request_id_follows_a_licence_from_the_web_request_to_the_registry(
    db: Database, app: Any, registry: RegistryProcess, registry_client: RegistryClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with db.transaction() as session:
        make_types(session)
        staff = make_staff(session, "高港区行政审批局", "MB158001", "trace_clerk")
    sent_id = "trace-4f1c2a9e77b0"
    response = _issue(app.test_client(), staff.token, sent_id)
    assert response.status_code == 201, response.get_json()
    # The web layer's own id if it answers one (core.web.request_id), else the client's header.
    request_id = response.headers.get("X-Request-ID") or sent_id

    with db.transaction() as session:
        rows = session.execute(sa.select(T.c.idem_key, T.c.request_id).where(T.c.status == "pending")).all()
    assert [r.request_id for r in rows] == [request_id]
    idem_key = rows[0].idem_key

    with caplog.at_level(logging.INFO, logger="licenses.sync"):
        report = sync.drain(db, registry_client, batch_size=100)
    assert report.totals.sent == 1
    worker_lines = [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
    assert worker_lines == [f"sync record {idem_key} sent: created request_id={request_id}"]

    registry_lines = [line for line in registry.log.read_text().splitlines() if request_id in line]
    assert len(registry_lines) == 1
    assert f"record {idem_key} created request_id={request_id}" in registry_lines[0]


def test_changes_outside_a_web_request_carry_no_request_id_and_send_none(
    db: Database, registry: RegistryProcess, registry_client: RegistryClient
) -> None:
    with db.transaction() as session:
        make_types(session)
        staff = make_staff(session, "高港区民政局", "01414003", "trace_cli")
    with db.transaction() as session:
        issued = issuing.issue_licence(
            session, staff.actor, {"type_code": PERSON_TYPE, "holder_name": "李四",
                                       "holder_code": id_number(12),
                                       "face": {"gender": "女", "work_type": "焊工"}})
        row = session.execute(sa.select(T.c.request_id, T.c.idem_key).where(
            T.c.licence_id == issued.id)).one()
    assert row.request_id is None
    with db.transaction() as session:
        claimed = sync._claim(session, 10)
    assert '"request_id"' not in sync.envelope_json(claimed[0])
    report = sync.drain(db, registry_client, batch_size=100)
    assert report.totals.sent == 1
    assert row.idem_key not in "\n".join(
        line for line in registry.log.read_text().splitlines() if "request_id=" in line)


def test_registry_rejects_a_request_id_it_would_not_log_safely(registry_client: RegistryClient) -> None:
    from tests.factories.sync import envelope

    env = envelope("T1")
    env["request_id"] = "bad id\nforged line"
    [result] = registry_client.post_batch("b1", [env])
    assert result.status == "rejected"
    assert "request_id" in (result.message or "")


def test_a_client_chosen_request_id_is_only_kept_when_safe() -> None:
    assert sync.clean_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    assert sync.clean_request_id("a" * 65) is None
    assert sync.clean_request_id("x\nforged") is None
    assert sync.clean_request_id(None) is None
