"""Sync throughput: outbox → city registry → marked synced, N Celery worker processes, a registry of M
processes on loopback; compared with raw HTTP posting of the same batches by one client, measured in the
same run, with the machine's load average and a worker's resident memory beside each figure.

    python -m benchmarks.sync_throughput --count 140000 --broker redis
    python -m benchmarks.sync_throughput --count 1000000 --broker redis --workers 2 --registry-workers 2
    python -m benchmarks.sync_throughput --scaling     # issue #16 item 3: the scaling table and 1M

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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
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
from licenses import bulk, grants, identifiers  # noqa: E402
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
    actors, type_snapshot = issuers(db)
    per = (count - have) // len(actors) + 1
    started = time.monotonic()
    for i, (actor, dept_id) in enumerate(actors):
        rows = synthetic_licences.synthetic_rows(type_snapshot, per, seed=int(time.time()) % 97 + i * 100)
        result = bulk.run_bulk(db, actor, dept_id, rows, source="benchmark", chunk_size=5000)
        if result.errors:
            raise SystemExit(f"seeding refused {len(result.errors)} rows, first: {result.errors[0]}")
        print(f"  seeded department {i + 1}/{len(actors)} ({time.monotonic() - started:.0f}s)", flush=True)


def clone_outbox(db: Database, count: int) -> None:
    """Top the outbox up to ``count`` rows with copies of the issued rows under fresh identifiers.

    Issuing 1M licences through the services takes 5-15 minutes here, most of it spent on what the sync
    never reads (licence rows, audit, signing). A copy differs from its original only in the 流水号 (so
    identifier, idem_key and the payload's certificate_identifier, with a valid check character): the
    registry validates and stores it like any other record; its licence_id points at the original.
    """
    with db.engine.connect() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(T)).scalar_one()
        clones = conn.execute(
            sa.select(sa.func.count()).select_from(T).where(T.c.idem_key.like("%.C%"))
        ).scalar_one()
    if have >= count:
        return
    started = time.monotonic()
    cols = [c.name for c in T.c if c.name != "id"]
    insert = sa.text(f"INSERT INTO licence_outbox ({', '.join(cols)}) VALUES "  # noqa: S608
                     f"({', '.join(':' + c for c in cols)})")
    insert = insert.bindparams(sa.bindparam("payload", type_=sa.JSON))
    k = clones
    while have < count:
        with db.engine.connect() as conn:
            source = conn.execute(
                sa.select(*[T.c[c] for c in cols]).where(T.c.idem_key.not_like("%.C%"))
                .order_by(T.c.id).limit(min(20_000, count - have))
            ).mappings().all()
        batch = []
        for row in source:
            k += 1
            payload = dict(row["payload"])
            ident = identifiers.parse_identifier(row["identifier"])
            new = identifiers.make_identifier(ident.type_code, ident.issuer_code, f"C{k:09d}", 1)
            payload["certificate_identifier"] = new
            batch.append({**row, "identifier": new, "idem_key": f"{new}:1", "version": 1, "payload": payload,
                          "status": "sent", "request_id": None})
        with db.transaction() as session:
            session.execute(insert, batch)
        have += len(batch)
        print(f"  cloned up to {have} rows ({time.monotonic() - started:.0f}s)", flush=True)


def issuers(db: Database) -> tuple[list[tuple[Principal, int]], list[LicenceType]]:
    """The four benchmark departments with a licence clerk each (created once) and the licence type."""
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
            # Licence rights are granted per user and type (issue 15); idempotent.
            grants.grant_licence_rights(session, SYSTEM, user_id=id_of(user), type_codes=[code])
            actors.append((Principal.of(user), id_of(dept)))
        type_snapshot = [lt]
    return actors, type_snapshot


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as fh:
            self.p = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_for(self, marker: bytes, timeout: float = 60) -> None:
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


def start_registry(
    tmp: Path, registry_db: str, processes: int = 1, *, faults: bool = False
) -> tuple[Proc, str]:
    """The reference registry, without fault switches unless asked (with them every request reads the
    switches and counts itself in the registry's database); more than one process runs it under
    gunicorn (`serve --workers N`), which needs PostgreSQL."""
    port = free_port()
    proc = Proc(
        [str(BIN / "python"), "-m", "city_registry", "serve", "--port", str(port),
         "--database-url", registry_db, "--key", KEY, "--workers", str(processes),
         *(["--enable-faults"] if faults else [])],
        dict(os.environ),
        tmp / f"registry-{port}.log",
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.p.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"registry did not start: {proc.log.read_text()[-2000:]}")
        time.sleep(0.1)


def reset_outbox(db: Database, count: int) -> int:
    """The first ``count`` outbox rows pending, every other row sent (only rows not sent are touched)."""
    with db.transaction() as session:
        session.execute(T.update().where(T.c.status != "sent").values(status="sent"))
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
    del rows
    client = RegistryClient(url, KEY, "321203", timeout=60)
    started = time.monotonic()
    for i in range(0, len(envelopes), batch):
        results = client.post_batch(uuid.uuid4().hex, envelopes[i : i + batch])
        if any(r.status != "created" for r in results):
            raise RuntimeError("the raw baseline must post into an empty registry")
    elapsed = time.monotonic() - started
    client.close()
    return len(envelopes) / elapsed


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (the prefork pool of a Celery worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class RssSampler(threading.Thread):
    """Samples the resident memory of the first worker's pool process (where the drain runs) twice a
    second: start, peak and end of the run, in MiB."""

    def __init__(self, worker_pid: int) -> None:
        super().__init__(daemon=True)
        self.worker_pid = worker_pid
        self.samples: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            pool = _children(self.worker_pid)
            rss = [r for r in (_rss_kib(p) for p in pool) if r is not None]
            if rss:
                self.samples.append(max(rss))
            self.halt.wait(0.5)

    def summary(self) -> dict[str, float | None]:
        if not self.samples:
            return {"rss_start_mib": None, "rss_peak_mib": None, "rss_end_mib": None}
        mib = [s / 1024 for s in self.samples]
        return {"rss_start_mib": round(mib[0], 1), "rss_peak_mib": round(max(mib), 1),
                "rss_end_mib": round(mib[-1], 1)}


def end_to_end(
    url: str, db: Database, db_url: str, broker: str, count: int, batch: int, tmp: Path, redis_url: str,
    workers: int = 1, lanes: int | None = None,
) -> dict[str, Any]:
    """records/s, seconds, load average and the first worker's RSS; ``workers`` processes (-c 1 each)."""
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
    if lanes is not None:
        env["SYNC_DRAIN_LANES"] = str(lanes)
    env.pop("REDIS_URL", None)
    if broker == "redis":
        env["REDIS_URL"] = redis_url
    settings = Settings.from_env(env)
    if broker == "redis":
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    else:
        shutil.rmtree(settings.broker_folder, ignore_errors=True)
    procs: list[Proc] = []
    try:
        for i in range(workers):
            procs.append(Proc(
                [str(BIN / "celery"), "-A", "celery_app", "worker", "-Q", "default,sync", "-c", "1",
                 "-n", f"bench{i}-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env,
                tmp / f"worker-{broker}-{i}.log",
            ))
        for proc in procs:  # no beat: only the enqueued drains run
            proc.wait_for(b" ready.")
        from celery_app import make_celery

        app = make_celery(settings)
        sampler = RssSampler(procs[0].p.pid)
        sampler.start()
        time.sleep(0.6)  # one sample before the drain starts
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        for _ in range(workers):  # one drain per worker process; each re-enqueues itself until done
            app.send_task("workers.sync_drain", queue="sync")
        pending = count
        while pending:
            time.sleep(0.05)
            # "Any pending row?" not "how many": a count over the pending rows every 50 ms took CPU
            # from the PostgreSQL the measured drain uses.
            with db.engine.connect() as conn:
                pending = len(conn.execute(sa.select(T.c.id).where(T.c.status == "pending").limit(1)).all())
            if time.monotonic() - started > 900:
                raise RuntimeError(f"still rows pending: {procs[0].log.read_text()[-2000:]}")
        elapsed = time.monotonic() - started
        load_after = os.getloadavg()[0]
        time.sleep(0.6)
        sampler.halt.set()
        sampler.join()
    finally:
        for proc in procs:
            proc.stop()
    return {"end_to_end_per_s": round(count / elapsed), "seconds": round(elapsed, 2),
            "load_before": round(load_before, 2), "load_after": round(load_after, 2), **sampler.summary()}


def registry_url_for(database_url: str, tmp: Path, name: str, kind: str) -> str:
    """A fresh, empty registry database: a SQLite file, or a PostgreSQL database (``<district
    database>_registry_<name>``) dropped and created."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{name}.db'}"
    # Named after the district's database, so sessions benchmarking side by side on one server (each with
    # its own --database-url) never drop each other's registry.
    district = sa.engine.make_url(database_url)
    pg = district.set(database=f"{district.database}_registry_{name}")
    url = pg.render_as_string(hide_password=False)
    admin = make_engine(
        pg.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg.database}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{pg.database}"'))
    admin.dispose()
    return url


def measure(
    args: argparse.Namespace, db: Database, tmp: Path, *, broker: str, count: int, workers: int,
    registry_workers: int, registry_db: str,
) -> dict[str, Any]:
    """One row: raw HTTP (one client) then end to end, each into a fresh registry of the same shape."""
    if registry_workers > 1 and registry_db != "postgresql":
        raise SystemExit("several registry processes share one PostgreSQL database: "
                         "use --registry-db postgresql")
    n = reset_outbox(db, count)
    load_raw = os.getloadavg()[0]
    registry_url = registry_url_for(args.database_url, tmp, f"raw_{broker}", registry_db)
    registry, url = start_registry(tmp, registry_url, registry_workers)
    try:
        raw = raw_http(url, db, n, args.batch)
    finally:
        registry.stop()
    registry_url = registry_url_for(args.database_url, tmp, f"e2e_{broker}", registry_db)
    registry, url = start_registry(tmp, registry_url, registry_workers)
    try:
        e2e = end_to_end(url, db, args.database_url, broker, n, args.batch, tmp, args.redis_url,
                         workers, args.lanes)
    finally:
        registry.stop()
    lanes = args.lanes or Settings.sync_drain_lanes
    row = {"broker": broker, "records": n, "workers": workers, "lanes": lanes,
           "registry_processes": registry_workers, "registry_db": registry_db, **e2e,
           "raw_http_per_s": round(raw), "load_raw": round(load_raw, 2),
           "ratio": round(e2e["end_to_end_per_s"] / raw, 3)}
    print(json.dumps(row), flush=True)
    return row


COLUMNS = ("records", "broker", "workers", "registry_processes", "end_to_end_per_s", "seconds",
           "raw_http_per_s", "ratio", "load_before", "load_after", "rss_start_mib", "rss_peak_mib",
           "rss_end_mib")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


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
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes (-c 1 each)")
    parser.add_argument("--registry-workers", type=int, default=1,
                        help="registry processes (more than 1: gunicorn on PostgreSQL)")
    parser.add_argument("--lanes", type=int, default=None, help="SYNC_DRAIN_LANES (default: the setting's)")
    parser.add_argument("--scaling", action="store_true",
                        help="issue #16 item 3: 140k with 1/2/4 workers x 1/2 registry processes (Redis, "
                             "registry on PostgreSQL), then 1M with --workers/--registry-workers")
    parser.add_argument("--million", type=int, default=1_000_000, help="size of the --scaling long run")
    parser.add_argument("--issued", type=int, default=140_000,
                        help="rows issued through the services; the rest are copies (clone_outbox)")
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    ensure_database(args.database_url)
    db = Database(args.database_url)
    size = max(args.count, args.million) if args.scaling else args.count
    print(f"seeding {size} outbox rows (once)...", flush=True)
    seed(db, min(size, args.issued))
    clone_outbox(db, size)
    if args.seed_only:
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        if args.scaling:
            for registry_workers in (1, 2):
                for workers in (1, 2, 4):
                    rows.append(measure(args, db, tmp, broker="redis", count=args.count, workers=workers,
                                        registry_workers=registry_workers, registry_db="postgresql"))
            rows.append(measure(args, db, tmp, broker="redis", count=args.million, workers=args.workers,
                                registry_workers=args.registry_workers, registry_db="postgresql"))
        else:
            for broker in (["redis", "filesystem"] if args.broker == "both" else [args.broker]):
                rows.append(measure(args, db, tmp, broker=broker, count=args.count, workers=args.workers,
                                    registry_workers=args.registry_workers, registry_db=args.registry_db))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(rows, indent=2))
    print(markdown(rows))
    print(f"total {time.monotonic() - started:.0f} s; cores {os.cpu_count()}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
