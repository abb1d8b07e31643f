"""The production layout of `make run` (Procfile: gunicorn, two Celery workers without -B, one beat,
the reference registry) on the machine's PostgreSQL and a Redis of its own: the runner creates the
missing database, migrates it, and a licence issued over HTTP by a user made with the CLI reaches
the registry. Also: a database the role may not create ends in one line, not a traceback.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from catalog import services as catalog_services
from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from core.auth import SYSTEM
from core.db import Database, make_engine
from licenses import types as licence_types
from tests.conftest import pg_test_url
from tests.factories.cli import flask_commands
from tests.factories.licences import org_code
from tests.factories.sync import KEY, TYPE_AUTHORITY, free_port, uscc_for
from workers.registry_client import RegistryClient

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
NO_CREATEDB_ROLE = "gaogang_nocreatedb"


def _admin() -> sa.Engine:
    url = sa.engine.make_url(pg_test_url()).set(database="postgres")
    return make_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")


def _drop_database(name: str) -> None:
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis server of this test's own on a free port (a real one: failing loudly if missing)."""
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed"
    port = free_port()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.exceptions.ConnectionError:  # not accepting connections yet
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"no {text!r} from the runner:\n{log.read_text(errors='replace')[-4000:]}")


def test_make_run_production_layout_creates_the_database_and_syncs_a_licence(
    tmp_path: Path, redis_url: str
) -> None:
    started = time.monotonic()
    url = sa.engine.make_url(pg_test_url())
    name = f"{url.database}_deploy"
    db_url = url.set(database=name).render_as_string(hide_password=False)
    _drop_database(name)
    port, registry_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url, "PORT": str(port),
           "CITY_REGISTRY_PORT": str(registry_port), "CITY_REGISTRY_KEY": KEY,
           "INSTANCE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "WORKER_CONCURRENCY": "1",
           "WEB_CONCURRENCY": "1"}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        runner = subprocess.Popen(
            [PYTHON, "-m", "demo.run", "--workers", "2"], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(log, "Press Ctrl+C to stop", runner, 60)
        # The web worker loaded the search's tables before its first request (webapp/gunicorn_conf.py).
        _wait_for(log, "search tables loaded in", runner, 60)
        text = log.read_text()
        assert f"created database {name}" in text
        for program in ("web", "worker.1", "worker.2", "beat", "registry"):
            assert f"==> starting {program}\n" in text
        assert "Traceback" not in text

        # Reference data through the services (there is no CLI for departments); the user and its
        # token through the CLI, as an operator would.
        database = Database(db_url)
        with database.transaction() as session:
            load_divisions_csv(session, *GAOGANG_FILES)
            dept = catalog_services.create_department(
                session, SYSTEM, name="区市场监督管理局", uscc=uscc_for(f"deploy:{os.getpid()}"),
                level="4", division_code="321203000000")
            type_code = f"{TYPE_AUTHORITY}901"
            licence_types.create_licence_type(session, SYSTEM, {
                "code": type_code, "name": "食品经营许可证", "holder_code_type": "001",
                "authority_name": "国家市场监督管理总局", "validity_years": 5})
            dept_id = dept.id
        database.engine.dispose()
        # The three commands run through the real `flask` entry point on the production app, in one
        # interpreter (tests.factories.cli): each loads the app and commits before the next.
        cli_env = {**env, "FLASK_APP": "wsgi:app"}
        *_, token_output = flask_commands([
            ["catalog", "create-user", "issuer1", "--role", "licence_clerk", "--department-id", str(dept_id),
             "--password", "password-123"],
            # Issuing is its own right, granted per department and licence type (issue #15).
            ["licences", "grant", "issuer1", "--type", type_code],
            ["catalog", "create-token", "issuer1"],
        ], cli_env)
        token = token_output.strip().splitlines()[-1]

        response = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/licences", headers={"Authorization": f"Bearer {token}"},
            json={"type_code": type_code, "holder_name": "泰州市高港区某某食品有限公司",
                  "holder_code": org_code(7)}, timeout=10)
        assert response.status_code == 201, response.text

        registry = RegistryClient(f"http://127.0.0.1:{registry_port}", KEY, "321203", timeout=5)
        try:
            deadline = time.monotonic() + 30
            stats = registry.stats()
            while stats["licences"] < 1 and time.monotonic() < deadline:
                time.sleep(0.5)
                stats = registry.stats()
        finally:
            registry.close()
        assert stats["licences"] == 1, log.read_text(errors="replace")[-4000:]
    finally:
        if runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(runner.pid, signal.SIGKILL)
                runner.wait(10)
        _drop_database(name)
    assert runner.returncode == 0, log.read_text(errors="replace")[-4000:]
    print(f"production layout up, licence synced and stopped in {time.monotonic() - started:.1f} s")


def test_make_run_names_the_command_when_the_role_may_not_create_the_database(tmp_path: Path) -> None:
    admin = _admin()
    try:
        with admin.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"),
                                {"r": NO_CREATEDB_ROLE}).first():
                conn.exec_driver_sql(f"CREATE ROLE {NO_CREATEDB_ROLE} LOGIN NOCREATEDB")
    finally:
        admin.dispose()
    url = sa.engine.make_url(pg_test_url())
    missing = f"{url.database}_never_created"
    _drop_database(missing)
    db_url = url.set(username=NO_CREATEDB_ROLE, password=None, database=missing)
    env = {**os.environ, "DATABASE_URL": db_url.render_as_string(hide_password=False),
           "REDIS_URL": "redis://127.0.0.1:1/0", "CITY_REGISTRY_KEY": KEY, "INSTANCE_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [PYTHON, "-m", "demo.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2
    assert len(output.splitlines()) == 1, output
    assert "Traceback" not in output
    assert f"createdb -h {url.host} -p {url.port or 5432}" in output
    assert f"-O {NO_CREATEDB_ROLE} {missing}" in output
