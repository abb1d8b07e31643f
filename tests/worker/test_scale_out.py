"""Sync at scale out (issue #16, items 1 and 2), on real processes:

- the reference registry under gunicorn with two processes on one PostgreSQL database: its fault switches
  hold for every process, and its ordering rule holds whatever process a change reaches;
- three Celery worker processes and one beat draining one outbox while licences change quickly: every
  licence ends as the district holds it, the registry never went back to an older change (its applied log
  is monotonic per licence, every refused stale write is in its refused log), no change was applied twice,
  every worker took part, and beat ticked once per period however many workers ran.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from city_registry.store import RegistryStore
from core.config import Settings
from core.db import Database, id_of
from licenses import issuing, sync
from licenses.sync import RegistryUnavailableError
from tests.conftest import _ensure_pg_database, pg_test_url, redis_db, reset_and_migrate_pg
from tests.factories.sync import (
    KEY,
    RegistryProcess,
    current_licences,
    envelope,
    issue_many,
    make_issuer,
    outbox_counts,
    registry_licences,
)
from webapp.tasks import make_scheduler
from workers.registry_client import RegistryClient

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).parent / "celery")
SWEEP_SECONDS = 2.0  # tests/worker/sync_worker_app.py


def _database(suffix: str, *, migrate: bool) -> str:
    url = sa.engine.make_url(pg_test_url())
    url_text = url.set(database=f"{url.database}_{suffix}").render_as_string(hide_password=False)
    _ensure_pg_database(url_text)
    if migrate:
        reset_and_migrate_pg(url_text)
    else:  # the registry creates its own tables
        engine = sa.create_engine(url_text)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    return url_text


def _redis_url() -> str:
    base = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    base = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    return f"{base}/{redis_db(7)}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryProcess]:
    tmp = tmp_path_factory.mktemp("scale-out-registry")
    process = RegistryProcess(tmp, database_url=_database("registry_pg", migrate=False), workers=2).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(registry: RegistryProcess) -> Iterator[RegistryClient]:
    c = RegistryClient(registry.url, KEY, "321203", timeout=10)
    c.reset()
    yield c
    c.set_faults(reset=True)
    c.close()


def _gunicorn_pids(registry: RegistryProcess) -> set[int]:
    """The worker processes of the registry's gunicorn master (its children, read from /proc)."""
    assert registry.proc is not None
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == registry.proc.pid:
            children.add(int(stat.parent.name))
    return children


def test_the_registry_runs_as_several_processes_whose_fault_switches_are_shared(
    registry: RegistryProcess, client: RegistryClient
) -> None:
    assert len(_gunicorn_pids(registry)) == 2
    before = client.set_faults(error_rate=1.0, status_code=503)["counters"]["faulted"]
    for n in range(12):  # a new client (connection) each time: gunicorn's processes take turns accepting
        sender = RegistryClient(registry.url, KEY, "321203", timeout=10)
        try:
            with pytest.raises(RegistryUnavailableError, match="503"):
                sender.post_batch(f"f{n}", [envelope(f"F{n}")])
        finally:
            sender.close()
    faults = client.set_faults()
    assert faults["counters"]["faulted"] - before == 12  # counted over both processes
    client.set_faults(reset=True)
    assert client.post_batch("ok", [envelope("S1")])[0].status == "created"


def test_the_ordering_rule_holds_across_registry_processes(
    registry: RegistryProcess, client: RegistryClient
) -> None:
    """Eight senders post the changes of 40 licences in random order, each on its own connection."""
    changes = [envelope(f"L{n:03d}", revision=r, sequence=n * 10 + r) for n in range(40) for r in range(1, 6)]
    random.Random(16).shuffle(changes)
    answers: list[str] = []
    lock = threading.Lock()

    def send(part: list[dict[str, object]]) -> None:
        sender = RegistryClient(registry.url, KEY, "321203", timeout=30)
        try:
            for i in range(0, len(part), 5):
                results = sender.post_batch(f"b{i}", part[i : i + 5])
                with lock:
                    answers.extend(r.status for r in results)
        finally:
            sender.close()

    threads = [threading.Thread(target=send, args=(changes[k::8],)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == len(changes)
    store = RegistryStore(registry.database_url)
    try:
        held = registry_licences(registry.database_url)
        assert {ident.split(".")[-3]: rev for ident, rev, _ in held.values()} == {
            f"L{n:03d}": 5 for n in range(40)}
        assert store.regressions() == []
        assert store.applied_twice() == []
        assert len(store.refused()) == answers.count("stale")
    finally:
        store.engine.dispose()


class Worker:
    """One ``celery worker`` process (no embedded beat) on the sync and default queues."""

    def __init__(self, name: str, tmp: Path, env: dict[str, str], args: list[str]) -> None:
        self.name, self.log = name, tmp / f"{name}.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [CELERY, "-A", "tests.worker.sync_worker_app", *args], cwd=ROOT, env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for(self, text: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def test_three_workers_and_one_beat_drain_one_outbox_in_order(
    registry: RegistryProcess, client: RegistryClient, tmp_path: Path
) -> None:
    url = _database("scale_out", migrate=True)
    redis_url = _redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    db = Database(url)
    # Each commit asks for a drain through the broker, as the web app does.
    sync.bind_drain_scheduler(db, make_scheduler(
        Settings(database_url=url, instance_dir=tmp_path, secret_key="test", redis_url=redis_url)))
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "CITY_REGISTRY_URL": registry.url,
           "CITY_REGISTRY_KEY": KEY, "SYNC_BATCH_SIZE": "50", "INSTANCE_DIR": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    processes: list[Worker] = []
    try:
        with db.transaction() as session:
            issuer = make_issuer(session)
            ids = issue_many(session, issuer, 150, seed=16)
        for n in (1, 2, 3):
            processes.append(Worker(f"worker{n}", tmp_path, env, [
                "worker", "-Q", "default,sync", "-c", "2", "-n", f"worker{n}@%h", "--loglevel", "INFO",
                "--without-gossip", "--without-mingle"]))
        for w in processes:
            w.wait_for(b" ready.")
        beat = Worker("beat", tmp_path, env,
                      ["beat", "-s", str(tmp_path / "beat-schedule"), "--loglevel", "INFO"])
        processes.append(beat)
        beat.wait_for(b"beat: Starting")
        started = time.monotonic()

        # Licences change quickly, one small transaction each (each commit asks for a drain), so that
        # the changes of one licence are spread over the drains of several workers.
        rng = random.Random(1603)
        current = {lid: lid for lid in ids}  # first id -> the licence's current version's id
        suspended: set[int] = set()
        actor = issuer.actor
        for step in range(150):
            first = rng.choice(ids[:60])
            lid = current[first]
            with db.transaction() as session:
                if lid in suspended:
                    issuing.resume_licence(session, actor, lid)
                    suspended.discard(lid)
                elif step % 3 == 0:
                    new = issuing.amend_licence(session, actor, lid,
                                                         {"holder_name": f"更名{step}有限公司"})
                    current[first] = id_of(new)
                else:
                    issuing.suspend_licence(session, actor, lid, "整改")
                    suspended.add(lid)

        deadline = time.monotonic() + 180
        while True:
            with db.transaction() as session:
                counts = outbox_counts(session)
                district = current_licences(session)
            if not counts.get("pending") and registry_licences(registry.database_url) == district:
                break
            assert time.monotonic() < deadline, f"not converged: {counts}"
            time.sleep(0.5)
        elapsed = time.monotonic() - started

        assert set(counts) <= {"sent", "superseded"}
        store = RegistryStore(registry.database_url)
        try:
            assert store.regressions() == []  # the registry never went back to an older change
            assert store.applied_twice() == []  # no change applied twice
            refused = store.refused()
            assert all((r["version"], r["revision"]) < (r["held_version"], r["held_revision"])
                       for r in refused)
        finally:
            store.engine.dispose()

        logs = {w.name: w.log.read_text(errors="replace") for w in processes}
        drains = {name: len(re.findall(r"Task workers\.sync_drain\[[^\]]+\] received", text))
                  for name, text in logs.items() if name != "beat"}
        assert sum(1 for n in drains.values() if n) >= 2, drains  # the outbox was drained by several workers
        sweeps = sum(len(re.findall(r"Task workers\.sync_sweep\[[^\]]+\] received", text))
                     for name, text in logs.items() if name != "beat")
        sent_by_beat = len(re.findall(r"Sending due task licence-sync-sweep", logs["beat"]))
        # One beat: the sweeps the workers received are the ticks of that one beat, one per period,
        # whatever the number of workers (expired sweeps are dropped, never multiplied).
        assert sweeps <= sent_by_beat <= elapsed / SWEEP_SECONDS + 3, (sweeps, sent_by_beat, elapsed)
        print(f"\n[scale-out] drains per worker={drains} sweeps received={sweeps} beat ticks={sent_by_beat} "
              f"in {elapsed:.1f}s; refused stale writes={len(refused)}; outbox={counts}")
    finally:
        for w in processes:
            w.stop()
        sync.bind_drain_scheduler(db, None)
        redis.Redis.from_url(redis_url).flushdb()
        db.engine.dispose()
