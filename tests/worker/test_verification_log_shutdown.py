"""/verify's log rows wait in the gunicorn worker and are written in batches
(licenses.verification_log); stopping gunicorn normally (SIGTERM) writes every waiting row: no
verification goes unlogged. Real gunicorn (2 workers x 2 threads), real PostgreSQL, real HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, func, select

from core.auth import SYSTEM
from core.db import Database
from demo.licences_demo import ensure_department, load_types
from demo.synthetic_licences import synthetic_rows
from licenses.bulk import run_bulk
from licenses.models import Licence, LicenceType, LicenceVerification
from licenses.signing import KeyStore
from licenses.verification import token_for
from tests.conftest import migrate
from tests.factories.migrations import empty_database_url
from tests.factories.sync import KEY, free_port

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]
CHECKS = 40


def _logged(db: Database) -> int:
    with db.transaction() as session:
        return int(session.exec(select(func.count()).select_from(LicenceVerification)).one())


def test_a_normal_stop_of_gunicorn_writes_every_waiting_verification_row(tmp_path: Path) -> None:
    url = empty_database_url("postgresql", tmp_path, "verifylog")
    migrate(url)
    db = Database(url)
    with db.transaction() as session:
        load_types(session)
        dept = ensure_department(session, "高港区行政审批局", "11321203", "MB158001")
        types = list(session.exec(select(LicenceType)).all())
        session.expunge_all()
    run_bulk(db, SYSTEM, dept.id or 0, synthetic_rows(types, 5), source="test")
    store = KeyStore(tmp_path / "licence_keys")
    with db.transaction() as session:
        licences = list(session.exec(select(Licence).order_by(col(Licence.id))).all())
        paths = [f"/verify/{token_for(session, store, lic)}" for lic in licences]

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "INSTANCE_DIR": str(tmp_path), "RATELIMIT_ENABLED": "0",
           "CITY_REGISTRY_KEY": KEY, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           # Rows would wait an hour: only the stop can write them.
           "VERIFICATION_LOG_SECONDS": "3600"}
    env.pop("REDIS_URL", None)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-w", "2", "--threads", "2",
             "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180  # a loaded machine starts slowly
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as client:
            for i in range(CHECKS):
                response = client.get(paths[i % len(paths)])
                assert response.status_code == 200
                assert "证照有效" in response.text
        assert _logged(db) == 0  # all waiting in the workers
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]
    assert _logged(db) == CHECKS, text[-4000:]
    db.engine.dispose()
