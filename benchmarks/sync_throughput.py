"""Sync throughput: outbox → city registry → marked synced, one Celery worker process, registry on
loopback; compared with raw HTTP posting of the same batches by one client, measured in the same run.

    .venv/bin/python -m benchmarks.sync_throughput --count 140000 --broker redis
    .venv/bin/python -m benchmarks.sync_throughput --count 1000000 --broker filesystem

Licences are issued once through licenses.bulk (the services' bulk path, which writes the outbox
rows) into a dedicated PostgreSQL database and reused: each run sets every outbox row back to
pending and empties the registry. The timed span starts when the drain is enqueued and ends when
no row is pending (every record acknowledged by the registry and marked sent in our database).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import services as catalog_services  # noqa: E402
from catalog.codes import make_uscc  # noqa: E402
from catalog.divisions import GAOGANG_FILES, load_divisions_csv  # noqa: E402
from catalog.models import Department, Division  # noqa: E402
from core import users  # noqa: E402
from core.auth import SYSTEM, Principal, Role, User  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database, id_of, make_engine, table_of  # noqa: E402
from demo import synthetic_licences  # noqa: E402
from licenses import bulk  # noqa: E402
from licenses import types as licence_types  # noqa: E402
from licenses.models import LicenceOutbox, LicenceType  # noqa: E402
from workers.registry_client import RegistryClient  # noqa: E402

KEY = "bench-key"
BIN = Path(sys.executable).parent
T = table_of(LicenceOutbox)
DEPARTMENTS = ["区市场监督管理局", "区卫生健康委员会", "区住房和城乡建设局", "区交通运输局"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_database(url: str) -> None:
    target = sa.engine.make_url(url)
    admin = make_engine(
        target.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        if not conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).first():
            conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    subprocess.run(
        [str(BIN / "alembic"), "upgrade", "heads"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
    )


def seed(db: Database, count: int) -> None:
    """Issue licences until the outbox holds ``count`` rows, spread over four departments."""
    with db.transaction() as session:
        have = session.execute(sa.select(sa.func.count()).select_from(T)).scalar_one()
    if have >= count:
        return
    with db.transaction() as session:
        if session.get(Division, "321203000000") is None:
            load_divisions_csv(session, *GAOGANG_FILES)
        code = "11100000000013338W011"
        lt = session.execute(sa.select(LicenceType).where(col(LicenceType.code) == code)).scalars().first()
        if lt is None:
            lt = licence_types.create_licence_type(
                session,
                SYSTEM,
                {"code": code, "name": "食品经营许可证", "holder_code_type": "001", "validity_years": 5},
            )
        actors = []
        for i, name in enumerate(DEPARTMENTS):
            dept = session.scalars(sa.select(Department).where(col(Department.name) == name)).first()
            if dept is None:
                dept = catalog_services.create_department(
                    session,
                    SYSTEM,
                    name=name,
                    uscc=make_uscc("11321203", f"MB0{i:05d}"),
                    level="4",
                    division_code="321203000000",
                )
                users.create_user(
                    session, SYSTEM, users.NewUser(
                    username=f"bench{i}",
                    password="password-123",  # noqa: S106  (benchmark data, never logs in)
                    display_name=name,
                    role=Role.DEPT_EDITOR,
                    department_id=dept.id,
                ))[0]
            user = session.scalars(sa.select(User).where(col(User.department_id) == dept.id)).first()
            if user is None:
                raise SystemExit(f"department {name} exists without its benchmark user: reset the database")
            actors.append((Principal.of(user), id_of(dept)))
        type_snapshot = [lt]
    per = (count - have) // len(actors) + 1
    started = time.monotonic()
    for i, (actor, dept_id) in enumerate(actors):
        rows = synthetic_licences.synthetic_rows(type_snapshot, per, seed=int(time.time()) % 97 + i * 100)
        bulk.run_bulk(db, actor, dept_id, rows, source="benchmark", chunk_size=5000)
        print(f"  seeded department {i + 1}/{len(actors)} ({time.monotonic() - started:.0f}s)", flush=True)


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as fh:
            self.p = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_for(self, marker: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.log.read_bytes():
                return
            if self.p.poll() is not None:
                raise RuntimeError(self.log.read_text()[-2000:])
            time.sleep(0.1)
        raise RuntimeError(f"timeout waiting for {marker!r}: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)


def start_registry(tmp: Path, registry_db: str) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(
        [
            str(BIN / "python"),
            "-m",
            "city_registry",
            "serve",
            "--port",
            str(port),
            "--database-url",
            registry_db,
            "--key",
            KEY,
            "--enable-faults",
        ],
        dict(os.environ),
        tmp / f"registry-{port}.log",
    )
    proc.wait_for(b"listening")
    return proc, f"http://127.0.0.1:{port}"


def reset_outbox(db: Database, count: int) -> int:
    with db.transaction() as session:
        session.execute(T.update().values(status="sent"))
        ids = sa.select(T.c.id).order_by(T.c.id).limit(count).scalar_subquery()
        session.execute(
            T.update().where(T.c.id.in_(ids)).values(status="pending", synced_at=None, attempts=0)
        )
        n = session.execute(sa.select(sa.func.count()).where(T.c.status == "pending")).scalar_one()
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE licence_outbox"))
    return int(n)


def raw_http(url: str, db: Database, count: int, batch: int) -> float:
    """One client posting the same batches (payloads read beforehand, not timed); records/s."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(T.c.id, T.c.idem_key, T.c.payload)
            .where(T.c.status == "pending")
            .order_by(T.c.id)
            .limit(count)
        ).all()
    envelopes = [{"idem_key": r.idem_key, "sequence": r.id, "record": r.payload} for r in rows]
    client = RegistryClient(url, KEY, "321203", timeout=60)
    started = time.monotonic()
    for i in range(0, len(envelopes), batch):
        results = client.post_batch(uuid.uuid4().hex, envelopes[i : i + batch])
        if any(r.status != "created" for r in results):
            raise RuntimeError("the raw baseline must post into an empty registry")
    elapsed = time.monotonic() - started
    client.close()
    return len(envelopes) / elapsed


def end_to_end(
    url: str, db: Database, db_url: str, broker: str, count: int, batch: int, tmp: Path, redis_url: str
) -> tuple[float, float]:
    """records/s and seconds, one worker process (-c 1)."""
    instance = tmp / f"instance-{broker}"
    instance.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CITY_REGISTRY_URL": url,
        "CITY_REGISTRY_KEY": KEY,
        "SYNC_BATCH_SIZE": str(batch),
        "INSTANCE_DIR": str(instance),
    }
    env.pop("REDIS_URL", None)
    if broker == "redis":
        env["REDIS_URL"] = redis_url
    settings = Settings.from_env(env)
    if broker == "redis":
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    else:
        shutil.rmtree(settings.broker_folder, ignore_errors=True)
    worker = Proc(
        [
            str(BIN / "celery"),
            "-A",
            "celery_app",
            "worker",
            "-Q",
            "default,sync",
            "-c",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        tmp / f"worker-{broker}.log",
    )
    time.sleep(3)  # no beat: only the enqueued drain runs
    from celery_app import make_celery

    app = make_celery(settings)
    pending = count
    try:
        started = time.monotonic()
        app.send_task("workers.sync_drain", queue="sync")
        while pending:
            time.sleep(0.05)
            # "Any pending row?" not "how many": a count over the pending rows every 50 ms took CPU
            # from the PostgreSQL the measured drain uses.
            with db.engine.connect() as conn:
                pending = len(conn.execute(sa.select(T.c.id).where(T.c.status == "pending").limit(1)).all())
            if time.monotonic() - started > 600:
                raise RuntimeError(f"still rows pending: {worker.log.read_text()[-2000:]}")
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    return count / elapsed, elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=140_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--broker", choices=["redis", "filesystem", "both"], default="both")
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_sync"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--registry-db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    ensure_database(args.database_url)
    db = Database(args.database_url)
    print(f"seeding {args.count} outbox rows (once)...", flush=True)
    seed(db, args.count)
    if args.seed_only:
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    results: dict[str, Any] = {"count": args.count, "batch": args.batch, "registry_db": args.registry_db}
    brokers = ["redis", "filesystem"] if args.broker == "both" else [args.broker]

    def registry_url_for(name: str) -> str:
        if args.registry_db == "sqlite":
            return f"sqlite:///{tmp / f'{name}.db'}"
        pg = sa.engine.make_url(args.database_url).set(database=f"gaogang_bench_registry_{name}")
        url = pg.render_as_string(hide_password=False)
        admin = make_engine(
            pg.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg.database}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{pg.database}"'))
        admin.dispose()
        return url

    for broker in brokers:
        n = reset_outbox(db, args.count)
        registry, url = start_registry(tmp, registry_url_for(f"raw-{broker}"))
        try:
            raw = raw_http(url, db, n, args.batch)
        finally:
            registry.stop()
        registry, url = start_registry(tmp, registry_url_for(f"e2e-{broker}"))
        try:
            rate, seconds = end_to_end(url, db, args.database_url, broker, n, args.batch, tmp, args.redis_url)
        finally:
            registry.stop()
        results[broker] = {
            "records": n,
            "end_to_end_per_s": round(rate),
            "seconds": round(seconds, 2),
            "raw_http_per_s": round(raw),
            "ratio": round(rate / raw, 3),
        }
        print(json.dumps({broker: results[broker]}), flush=True)
    print(json.dumps(results, indent=2))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
