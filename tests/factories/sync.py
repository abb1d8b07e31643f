"""Factories and helpers for the sync tests (this module itself holds no tests).

Licences are created through licenses.issuing / licenses.bulk, as departments create them; the
reference city registry runs as its own process over HTTP (``RegistryProcess``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlmodel import select

from catalog import services as catalog_services
from catalog.codes import make_uscc
from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from catalog.models import Department, Division
from city_registry.protocol import iso7064_mod37_36
from core import users
from core.auth import SYSTEM, Principal, Role
from core.db import id_of
from demo import synthetic_licences
from licenses import bulk, grants
from licenses import types as licence_types
from licenses.models import Licence, LicenceOutbox, LicenceType
from workers.registry_client import RegistryClient

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-shared-key"
DISTRICT = "321203"
TYPE_AUTHORITY = "11100000000013338W"  # 住建部 (a real, valid USCC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uscc_for(name: str) -> str:
    digits = str(int(hashlib.sha256(name.encode()).hexdigest(), 16))[:8]
    return make_uscc("11321203", digits)


@dataclass
class Issuer:
    department: Department
    actor: Principal
    licence_type: LicenceType


_n = iter(range(1, 10**9))


def make_issuer(session: Any, name: str = "区市场监督管理局", type_seq: int | None = None) -> Issuer:
    if session.get(Division, "321203000000") is None:
        load_divisions_csv(session, *GAOGANG_FILES)
    n = next(_n)
    dept = catalog_services.create_department(
        session, SYSTEM, name=f"{name}{n}", uscc=uscc_for(f"{name}{n}:{os.getpid()}"), level="4",
        division_code="321203000000")
    user = users.create_user(session, SYSTEM, users.NewUser(
        username=f"sync{n}x{os.getpid()}", password="password-123",
        display_name=f"发证员{n}", role=Role.LICENCE_CLERK, department_id=dept.id))[0]
    seq = type_seq if type_seq is not None else 100 + n % 800
    code = f"{TYPE_AUTHORITY}{seq:03d}"
    lt = session.exec(select(LicenceType).where(LicenceType.code == code)).first()
    if lt is None:
        lt = licence_types.create_licence_type(session, SYSTEM, {
            # Type names are unique (issue 15): one test type per code.
            "code": code, "name": f"食品经营许可证（测试类型 {seq:03d}）", "holder_code_type": "001",
            "authority_name": "国家市场监督管理总局", "validity_years": 5,
        })
    session.flush()
    grants.grant_licence_rights(session, SYSTEM, user_id=id_of(user), type_codes=[lt.code])
    return Issuer(dept, Principal.of(user), lt)


def issue_many(session: Any, issuer: Issuer, count: int, *, seed: int = 1) -> list[int]:
    """Issue ``count`` synthetic licences through the bulk service (one outbox row each).

    The synthetic 证照编号 count from 1 in every batch; a batch of another seed gets numbers of its own,
    since one department's live licences of one type never share a number (uq_licence_number)."""
    rows = [
        (line, {**row, "number": f"{row['number']}-{seed}"})
        for line, row in synthetic_licences.synthetic_rows([issuer.licence_type], count, seed=seed)
    ]
    result = bulk.bulk_issue(session, issuer.actor, issuer.department, rows, source="test")
    assert not result.errors, result.errors[:3]
    session.flush()
    return list(range(result.first_id or 0, (result.last_id or -1) + 1))


@contextmanager
def registry_database(kind: str, tmp_path: Path, name: str) -> Iterator[str]:
    """A database URL for a RegistryStore: an SQLite file in ``tmp_path``, or this xdist worker's test
    database name + ``_`` + ``name`` on PostgreSQL, emptied afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    from tests.conftest import _ensure_pg_database, pg_test_url

    url = sa.engine.make_url(pg_test_url())
    text = url.set(database=f"{url.database}_{name}").render_as_string(hide_password=False)
    _ensure_pg_database(text)
    try:
        yield text
    finally:  # emptied after a failing test too, so the next one starts from nothing
        from city_registry.store import RegistryStore

        store = RegistryStore(text)
        store.reset()
        store.engine.dispose()


def empty_sync_state(session: Any) -> None:
    """The district's sync state as before any change: the outbox, the runs, the reconciliation
    baseline that follows the outbox (licenses.recon_state) and the drain lock (PostgreSQL)."""
    session.execute(sa.text("TRUNCATE licence_outbox, sync_run, licence_recon_latest, licence_recon_day"))
    session.execute(sa.text("UPDATE sync_lock SET expires_at = NULL"))


def outbox_counts(session: Any) -> dict[str, int]:
    t = LicenceOutbox.__table__
    return {s: n for s, n in session.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status))}


def current_licences(session: Any) -> dict[str, tuple[str, int, str]]:
    """licence key -> (identifier, revision, status) of each licence's latest change, district side."""
    t = LicenceOutbox.__table__
    out: dict[str, tuple[str, int, str]] = {}
    for ident, version, payload in session.execute(
        sa.select(t.c.identifier, t.c.version, t.c.payload).where(t.c.status != "skipped").order_by(t.c.id)
    ):
        out[ident.rsplit(".", 2)[0]] = (ident, version, payload["status"])
    return out


def registry_licences(url: str) -> dict[str, tuple[str, int, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT licence_key, identifier, revision, status FROM registry_licence"))
            return {k: (i, r, s) for k, i, r, s in rows}
    finally:
        engine.dispose()


def registry_stats(url: str) -> dict[str, int]:
    """The registry's counts read from its database (works while its HTTP side is faulted)."""
    from city_registry.store import RegistryStore

    store = RegistryStore(url)
    try:
        return store.stats()
    finally:
        store.engine.dispose()


class RegistryProcess:
    """The reference city registry as its own process on a free port, with fault switches on."""

    def __init__(self, tmp: Path, database_url: str | None = None, port: int | None = None,
                 workers: int = 1) -> None:
        self.workers = workers  # more than 1: gunicorn processes on one database (use PostgreSQL)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite:///{tmp / f'registry-{self.port}.db'}"
        self.log = tmp / f"registry-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RegistryProcess:
        env = {**os.environ, "CITY_REGISTRY_KEY": KEY}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "city_registry", "serve", "--port", str(self.port),
                 "--database-url", self.database_url, "--enable-faults", "--workers", str(self.workers)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("registry did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def licence_ids(session: Any) -> list[int]:
    return list(session.execute(sa.select(Licence.id).order_by(Licence.id)).scalars())


# Records as the district sends them to the registry (the registry tests build them by hand).
TYPE = "11100000000013338W011"
ISSUER = "11321203MB0000000X"


def identifier(serial: str, version: int = 1, issuer: str = ISSUER) -> str:
    body = f"{TYPE}{issuer}{serial}{version:03d}"
    return f"1.2.156.3005.2.{TYPE}.{issuer}.{serial}.{version:03d}.{iso7064_mod37_36(body)}"


def envelope(
    serial: str,
    *,
    version: int = 1,
    revision: int = 1,
    sequence: int = 1,
    status: str = "valid",
    issue_date: str = "2018-03-01",
    **overrides: Any,
) -> dict[str, Any]:
    ident = identifier(serial, version)
    record = {
        "certificate_identifier": ident,
        "certificate_type_code": TYPE,
        "certificate_type_name": "建筑工程施工许可证",
        "certificate_name": "建筑工程施工许可证",
        "certificate_number": f"N{serial}",
        "holder_name": "泰州市某建设有限公司",
        "holder_code": "91321203MA1MXXXX0X",
        "holder_code_type": "001",
        "issuer_name": "区住建局",
        "issuer_code": ISSUER,
        "issue_date": issue_date,
        "area_code": "321203",
        "valid_from": issue_date,
        "valid_to": None,
        "status": status,
        "version": revision,
        "operation": "issue",
    }
    record.update(overrides)
    return {"idem_key": f"{ident}:{revision}", "sequence": sequence, "record": record}


def running_registry(folder: Path) -> Iterator[RegistryProcess]:
    """The reference registry as a real process for a module's tests (a fixture body: ``yield from``)."""
    proc = RegistryProcess(folder).start()
    yield proc
    proc.stop()


def emptied_client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    """A client of ``registry`` that starts and leaves it empty (a fixture body: ``yield from``)."""
    c = RegistryClient(registry.url, KEY, "321203", timeout=5)
    c.reset()
    yield c
    c.reset()
    c.close()


# ---- a real Celery worker process for the worker suites (sync faults, fault state machine, case warnings)

CELERY = str(Path(sys.executable).parent / "celery")
BATCH = 100


def redis_base() -> str:
    """The test Redis server's URL without its database number."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    return url.rsplit("/", 1)[0] if url.count("/") > 2 else url


class Worker:
    """``celery worker -B`` on the sync and default queues, in its own process group."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str, registry_url: str,
                 concurrency: int = 2) -> None:
        self.tmp, self.database_url, self.redis_url = tmp, database_url, redis_url
        self.registry_url, self.concurrency = registry_url, concurrency
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "worker.log"

    def start(self) -> Worker:
        env = {**os.environ, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
               "CITY_REGISTRY_URL": self.registry_url, "CITY_REGISTRY_KEY": KEY,
               "SYNC_BATCH_SIZE": str(BATCH), "INSTANCE_DIR": str(self.tmp),
               "PYTHONPATH": str(ROOT)}
        schedule = self.tmp / f"beat-{time.monotonic_ns()}"
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [CELERY, "-A", "tests.worker.sync_worker_app", "worker", "-B", "-Q", "default,sync", "-c",
                 str(self.concurrency), "--loglevel", "INFO", "-s", str(schedule), "--without-gossip",
                 "--without-mingle"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        # Generous: on a loaded machine start-up takes tens of seconds. A worker that is not ready in
        # time is killed: left running, it went on consuming the next run's messages from the same Redis
        # database and sending them to a registry nobody checks.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with self.log.open("rb") as fh:
                fh.seek(offset)
                if b" ready." in fh.read():
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"worker not ready: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main process, pool children and beat) at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
