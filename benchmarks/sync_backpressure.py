"""Back-pressure of the sync: the broker's queues while the city registry is down and licences keep being
written (issue #16 item 5).

    python -m benchmarks.sync_backpressure                       # 5-minute outage
    python -m benchmarks.sync_backpressure --outage-seconds 60   # the short run

Production layout on PostgreSQL and Redis: ``--workers`` Celery worker processes (the first one with beat,
so the 30 s sweep runs), the reference registry with its fault switches, and writers in this process that
issue ``--per-commit`` licences every ``--write-interval`` seconds through the services' bulk path, with
the web app's drain scheduler bound (webapp.tasks.make_scheduler: what a web request does after its
commit). After ``--warmup-seconds`` the registry is switched down for ``--outage-seconds``; the writers
stop when it comes back, and the run waits until nothing is pending.

Every ``--sample-seconds`` it records the Redis LLEN of the Celery queues (``sync``, ``default`` and their
priority lists), the messages a worker holds unacknowledged (Redis ``unacked``: prefetched and ETA
retries), the drain token (core.coalesce) and the outbox's pending rows. The figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sync_throughput import BIN, KEY, Proc, T, ensure_database, issuers, start_registry  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402
from demo import synthetic_licences  # noqa: E402
from licenses import bulk, sync  # noqa: E402
from webapp.tasks import make_scheduler  # noqa: E402
from workers.registry_client import RegistryClient  # noqa: E402

# kombu's Redis transport keeps a queue's messages of priority 0 under its name and the other priority
# steps (3, 6, 9) under name + "\x06\x16" + step.
PRIORITY_SEP = "\x06\x16"


def queue_length(r: redis.Redis, queue: str) -> int:
    return sum(int(r.llen(queue if step == 0 else f"{queue}{PRIORITY_SEP}{step}")) for step in (0, 3, 6, 9))


class Writers(threading.Thread):
    """Issues licences in small commits, as departments' clerks do, until stopped."""

    def __init__(self, db: Database, per_commit: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.db, self.per_commit, self.interval = db, per_commit, interval
        self.halt = threading.Event()
        self.written = 0
        self.commits = 0
        self.errors: list[str] = []

    def run(self) -> None:
        actors, types = issuers(self.db)
        tag = uuid.uuid4().hex[:6].upper()
        k = 0
        while not self.halt.is_set():
            actor, dept_id = actors[k % len(actors)]
            rows = []
            for line, row in synthetic_licences.synthetic_rows(types, self.per_commit, seed=k):
                row.pop("serial", None)  # a fresh 证照编号 per row gives a fresh identifier
                row["number"] = f"BP{tag}{k:06d}{line:03d}"
                rows.append((line, row))
            try:
                result = bulk.run_bulk(self.db, actor, dept_id, rows, source="benchmark")
                self.written += result.inserted
                self.commits += 1
                if result.errors:
                    self.errors.append(str(result.errors[0]))
            except Exception as exc:  # keep writing: a writer's failure is a finding, not the end of the run
                self.errors.append(repr(exc))
            k += 1
            self.halt.wait(self.interval)


def sample(r: redis.Redis, db: Database, started: float, phase: str) -> dict[str, Any]:
    with db.engine.connect() as conn:
        pending = conn.execute(sa.select(sa.func.count()).where(T.c.status == "pending")).scalar_one()
    token_ms = r.pttl(f"gaogang:coalesce:{sync.DRAIN_JOB}")
    return {
        "t": round(time.monotonic() - started),
        "phase": phase,
        "llen_sync": queue_length(r, "sync"),
        "llen_default": queue_length(r, "default"),
        "unacked": int(r.hlen("unacked")),
        "drain_token_s": round(token_ms / 1000, 1) if token_ms and token_ms > 0 else 0,
        "pending": int(pending),
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outage-seconds", type=float, default=300)
    parser.add_argument("--warmup-seconds", type=float, default=20)
    parser.add_argument("--recovery-timeout", type=float, default=600)
    parser.add_argument("--sample-seconds", type=float, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-commit", type=int, default=5, help="licences per writer commit")
    parser.add_argument("--write-interval", type=float, default=0.2, help="seconds between commits")
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_backpressure"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    args = parser.parse_args()
    ensure_database(args.database_url)
    db = Database(args.database_url)
    with db.transaction() as session:  # earlier runs' rows are not this run's business
        session.execute(T.update().where(T.c.status == "pending").values(status="skipped"))
    tmp = Path(tempfile.mkdtemp(prefix="sync-backpressure-"))
    r = redis.Redis.from_url(args.redis_url)
    r.flushdb()
    registry, url = start_registry(tmp, f"sqlite:///{tmp / 'registry.db'}", faults=True)
    client = RegistryClient(url, KEY, "321203", timeout=10)
    env = {**os.environ, "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url,
           "CITY_REGISTRY_URL": url, "CITY_REGISTRY_KEY": KEY, "INSTANCE_DIR": str(tmp)}
    settings = Settings.from_env(env)
    procs: list[Proc] = []
    samples: list[dict[str, Any]] = []
    writers = Writers(db, args.per_commit, args.write_interval)
    try:
        for i in range(args.workers):
            beat = ["-B", "-s", str(tmp / "beat-schedule")] if i == 0 else []
            procs.append(Proc([str(BIN / "celery"), "-A", "celery_app", "worker", "-Q", "default,sync",
                               "-c", "1", "-n", f"bp{i}-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "INFO",
                               "--without-gossip", "--without-mingle", *beat], env, tmp / f"worker-{i}.log"))
        for proc in procs:
            proc.wait_for(b" ready.")
        sync.bind_drain_scheduler(db, make_scheduler(settings))
        started = time.monotonic()
        writers.start()

        def run_phase(phase: str, seconds: float, until_drained: bool = False) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                row = sample(r, db, started, phase)
                samples.append(row)
                print(json.dumps(row), flush=True)
                if until_drained and row["pending"] == 0:
                    return
                time.sleep(args.sample_seconds)

        run_phase("warm-up", args.warmup_seconds)
        client.set_faults(down=True)
        outage_started = time.monotonic()
        run_phase("outage", args.outage_seconds)
        client.set_faults(down=False)
        back = time.monotonic()
        writers.halt.set()
        writers.join()
        run_phase("recovery", args.recovery_timeout, until_drained=True)
        recovered = time.monotonic() - back
        stats = client.stats()
    finally:
        writers.halt.set()
        sync.bind_drain_scheduler(db, None)
        for proc in procs:
            proc.stop()
        registry.stop()
    outage = [s for s in samples if s["phase"] == "outage"]
    summary = {
        "outage_s": round(back - outage_started),
        "licences_written": writers.written,
        "writer_commits": writers.commits,
        "writer_errors": len(writers.errors),
        "max_llen_sync_outage": max(s["llen_sync"] for s in outage),
        "max_llen_default_outage": max(s["llen_default"] for s in outage),
        "max_unacked_outage": max(s["unacked"] for s in outage),
        "llen_sync_end_of_outage": outage[-1]["llen_sync"],
        "max_pending": max(s["pending"] for s in samples),
        "recovery_s": round(recovered, 1),
        "pending_after": samples[-1]["pending"],
        "registry_licences": stats.get("licences"),
    }
    print(json.dumps(summary, indent=2))
    if writers.errors:
        print("first writer error:", writers.errors[0])
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
