"""Load under faults: 60 s of mixed public traffic while editors write and the sync fights a flaky registry.

    .venv/bin/python -m benchmarks.load_under_faults [--duration 60] [--pg URL] [--redis-url URL]
        [--connections 16] [--error-rate 0.2] [--write-interval 0.25]

What runs, all as real processes on this machine:

- PostgreSQL scratch database (``--pg``, dropped and recreated) with the demo data
  (``flask demo load``: the Gaogang catalogue, 3,000 licences) and Redis as the broker.
- ``gunicorn -w 2 wsgi:app`` (rate limiting off: wrk is one client), JSON access log to a file.
- The reference city registry (``python -m city_registry serve --enable-faults``) and a real Celery
  worker with beat (``celery -A celery_app worker -B -Q default,sync``).
- After the demo's backlog has synced, the registry is switched to ``error_rate`` (default 0.2: one
  request in five answered 503) for the rest of the run.
- wrk (-t2) with a Lua script cycling through a shuffled mix of public GETs: 40 % search pages and
  search API, 40 % entry pages, 20 % /verify/<token> (each verification also appends an audit row).
  The script counts responses by status class.
- A writer thread (an editor and an administrator with API tokens) issues licences through
  ``POST /api/v1/licences``, edits draft entries through ``PATCH /api/v1/entries/<id>`` and revokes
  every fifth licence it issued, one request every ``--write-interval`` seconds.

Reported: requests and 5xx (wrk, writer and the access log), latency p50/p99, RSS of the two gunicorn
workers at start (after a 5 s warm-up) and end, peak RSS during the run, the outbox after the load,
and the time from the end of the load until no outbox row is pending (the sync lag back to zero).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa
from sqlmodel import col

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.search_latency import QUERIES  # noqa: E402
from catalog.models import ImplementationEntry  # noqa: E402
from core import users  # noqa: E402
from core.auth import SYSTEM, Role  # noqa: E402
from core.db import Database, id_of, make_engine, table_of  # noqa: E402
from demo.synthetic_licences import synthetic_rows  # noqa: E402
from licenses.models import Licence, LicenceOutbox, LicenceType  # noqa: E402
from licenses.signing import KeyStore  # noqa: E402
from licenses.verification import token_for  # noqa: E402
from tests.conftest import migrate  # noqa: E402
from workers.registry_client import RegistryClient  # noqa: E402

REGISTRY_KEY = "bench-shared-key"
DISTRICT = "321203"

LUA = r"""
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  i = math.random(#paths)
  c2, c3, c4, c5 = 0, 0, 0, 0
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
function response(status, headers, body)
  if status >= 500 then c5 = c5 + 1
  elseif status >= 400 then c4 = c4 + 1
  elseif status >= 300 then c3 = c3 + 1
  else c2 = c2 + 1 end
end
function done(summary, latency, requests)
  local t2, t3, t4, t5 = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    t2 = t2 + t:get("c2"); t3 = t3 + t:get("c3"); t4 = t4 + t:get("c4"); t5 = t5 + t:get("c5")
  end
  io.write(string.format("STATUS 2xx=%%d 3xx=%%d 4xx=%%d 5xx=%%d\n", t2, t3, t4, t5))
  io.write(string.format("LAT p50=%%d p90=%%d p99=%%d max=%%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process in its own session, logging to a file, stopped by its process group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as fh:
            self.p = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(5)


def wait_http(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not proc.alive():
            raise SystemExit(f"{proc.name} exited:\n{proc.log.read_text()[-3000:]}")
        time.sleep(0.2)
    raise SystemExit(f"{proc.name} did not answer {url} within {timeout} s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def gunicorn_workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(c) for c in children)


def fresh_database(url: str) -> None:
    target = sa.engine.make_url(url)
    admin = make_engine(target.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    migrate(url)


def outbox_state(db: Database) -> tuple[dict[str, int], float | None]:
    t = table_of(LicenceOutbox)
    with db.engine.connect() as conn:
        counts = {s: n for s, n in conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status))}
        oldest = conn.execute(sa.select(sa.func.min(t.c.created_at)).where(t.c.status == "pending")).scalar()
    age = None
    if oldest is not None:
        age = time.time() - oldest.timestamp()
    return counts, age


def wait_synced(db: Database, timeout: float) -> float | None:
    """Seconds until no outbox row is pending, or None on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counts, _age = outbox_state(db)
        if counts.get("pending", 0) == 0:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def prepare(db: Database, instance: Path) -> dict[str, Any]:
    """Writer accounts and tokens, the public paths of the mix, the draft entries to edit."""
    with db.transaction() as session:
        clerk_dept = session.execute(
            sa.select(col(Licence.issuer_department_id)).group_by(col(Licence.issuer_department_id))
            .order_by(sa.func.count().desc()).limit(1)
        ).scalar_one()
        password = secrets.token_urlsafe(16)  # the writer authenticates with API tokens only
        editor = users.create_user(session, SYSTEM, users.NewUser(username="load_editor", password=password,
                             display_name="压测发证员", role=Role.DEPT_EDITOR, department_id=clerk_dept))[0]
        admin = users.create_user(session, SYSTEM, users.NewUser(username="load_admin", password=password,
                            display_name="压测管理员", role=Role.ADMIN))[0]
        editor_token = users.issue_token(session, SYSTEM, id_of(editor), "load test")[1]
        admin_token = users.issue_token(session, SYSTEM, id_of(admin), "load test")[1]
        types = list(session.execute(sa.select(LicenceType).order_by(col(LicenceType.id))).scalars())
        drafts = list(session.execute(
            sa.select(col(ImplementationEntry.id)).where(col(ImplementationEntry.status) == "draft")
            .order_by(col(ImplementationEntry.id)).limit(50)).scalars())
        published = list(session.execute(
            sa.select(col(ImplementationEntry.task_code))
            .where(col(ImplementationEntry.status) == "published")
            .order_by(col(ImplementationEntry.id)).limit(400)).scalars())
        store = KeyStore(instance / "licence_keys")
        licences = list(session.execute(sa.select(Licence).order_by(col(Licence.id)).limit(200)).scalars())
        verify = [f"/verify/{token_for(session, store, lic)}" for lic in licences]
    rng = random.Random(7)
    search = [f"/search?q={quote(q)}" for q in QUERIES] + [f"/api/v1/search?q={quote(q)}" for q in QUERIES]
    entries = [f"/entries/{code}" for code in published]
    mix = ([rng.choice(search) for _ in range(4000)] + [rng.choice(entries) for _ in range(4000)]
           + [rng.choice(verify) for _ in range(2000)])
    rng.shuffle(mix)
    return {"editor_token": editor_token, "admin_token": admin_token, "types": types, "drafts": drafts,
            "mix": mix, "counts": {"search": len(search), "entries": len(entries), "verify": len(verify)}}


class Writer(threading.Thread):
    """Issues licences, edits drafts and revokes, as an editor and an administrator would."""

    def __init__(self, base: str, setup: dict[str, Any], interval: float) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.setup = setup
        self.interval = interval
        self.stop_event = threading.Event()
        self.statuses: Counter[str] = Counter()
        self.errors: list[str] = []
        self.issued: list[int] = []

    def _record(self, kind: str, response: httpx.Response) -> None:
        self.statuses[f"{kind} {response.status_code}"] += 1
        if response.status_code >= 400 and len(self.errors) < 10:
            self.errors.append(f"{kind} {response.status_code} {response.text[:200]}")

    def run(self) -> None:
        editor = {"Authorization": f"Bearer {self.setup['editor_token']}"}
        admin = {"Authorization": f"Bearer {self.setup['admin_token']}"}
        rows = synthetic_rows(self.setup["types"], 100_000, year=2026, seed=99)
        drafts = self.setup["drafts"]
        n = 0
        with httpx.Client(base_url=self.base, timeout=30) as http:
            while not self.stop_event.is_set():
                n += 1
                try:
                    if n % 2 == 1:
                        _line, row = next(rows)
                        body = {k: row[k] for k in ("type_code", "holder_name", "holder_code", "face")}
                        r = http.post("/api/v1/licences", json=body, headers=editor)
                        self._record("issue", r)
                        if r.status_code == 201 or r.status_code == 200:
                            self.issued.append(r.json()["id"])
                    elif n % 10 == 0 and self.issued:
                        lid = self.issued.pop(0)
                        r = http.post(f"/api/v1/licences/{lid}/revoke", json={"reason": "压测吊销"},
                                      headers=editor)
                        self._record("revoke", r)
                    elif drafts:
                        entry_id = drafts[n % len(drafts)]
                        r = http.patch(f"/api/v1/entries/{entry_id}",
                                       json={"accept_conditions": f"压测修改 {n} {time.time():.3f}"},
                                       headers=admin)
                        self._record("edit", r)
                except httpx.HTTPError as exc:
                    self.statuses[f"transport {exc.__class__.__name__}"] += 1
                self.stop_event.wait(self.interval)


def bulk_import(env: dict[str, str], args: argparse.Namespace, out: dict[str, Any]) -> None:
    """A department's batch import in the middle of the load (the CLI app enqueues the sync)."""
    if not args.bulk:
        return
    time.sleep(args.duration / 3)
    started = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "licences", "generate",
         "--count", str(args.bulk), "--year", "2026", "--seed", "4242"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    summary = re.search(r"生成 (\d+) 张（跳过 (\d+)，错误 (\d+)）", result.stdout + result.stderr)
    out.update(count=args.bulk, seconds=round(time.monotonic() - started, 1), rc=result.returncode,
               inserted=int(summary.group(1)) if summary else None,
               skipped=int(summary.group(2)) if summary else None,
               errors=int(summary.group(3)) if summary else None)
    if result.returncode != 0:
        out["stderr"] = result.stderr[-2000:]


def delivery_figures(db: Database, since: float) -> dict[str, Any]:
    """Per outbox row created during the load: seconds from the change to the registry's answer."""
    t = table_of(LicenceOutbox)
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.created_at, t.c.synced_at, t.c.attempts, t.c.request_id)
                            .where(t.c.created_at >= sa.func.to_timestamp(since))).all()
    delays = [(r.synced_at - r.created_at).total_seconds() for r in rows if r.synced_at is not None]
    return {
        "rows": len(rows),
        "synced": len(delays),
        "retried_rows": sum(1 for r in rows if (r.attempts or 0) > 1),
        "with_request_id": sum(1 for r in rows if r.request_id),
        "delay_p50_s": round(_pct(delays, 0.5), 2),
        "delay_p99_s": round(_pct(delays, 0.99), 2),
        "delay_max_s": round(max(delays, default=0.0), 2),
    }


def run_wrk(url: str, script: Path, duration: int, connections: int) -> str:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def parse_wrk(out: str) -> dict[str, Any]:
    status = dict(re.findall(r"(\dxx)=(\d+)", out))
    lat = dict(re.findall(r"(p50|p90|p99|max)=(\d+)", out))
    requests = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "requests": int(requests.group(1)) if requests else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "status": {k: int(v) for k, v in status.items()},
        "latency_ms": {k: int(v) / 1000 for k, v in lat.items()},
        "socket_errors": (re.search(r"Socket errors:.*", out) or [""])[0],
    }


def _kind(path: str) -> str:
    for prefix, kind in (("/api/v1/search", "search API"), ("/search", "search page"),
                         ("/entries/", "entry page"), ("/verify/", "verify"),
                         ("/api/v1/licences", "licence writes"), ("/api/v1/entries", "entry edits")):
        if path.startswith(prefix):
            return kind
    return "other"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def access_log_figures(path: Path, offset: int) -> tuple[Counter[int], dict[str, dict[str, float]]]:
    """Statuses, and server-side duration per kind of request, from the JSON access log after offset."""
    counts: Counter[int] = Counter()
    durations: dict[str, list[float]] = {}
    with path.open("rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    for line in text.splitlines():
        if '"gaogang.access"' not in line:
            continue
        try:
            entry = json.loads(line)
            counts[int(entry["status"])] += 1
            durations.setdefault(_kind(entry["path"]), []).append(float(entry["duration_ms"]))
        except (ValueError, KeyError, TypeError):
            continue
    by_kind = {k: {"count": len(v), "p50_ms": _pct(v, 0.5), "p99_ms": _pct(v, 0.99)}
               for k, v in sorted(durations.items())}
    return counts, by_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_ops")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--error-rate", type=float, default=0.2)
    parser.add_argument("--write-interval", type=float, default=0.25)
    parser.add_argument("--lag-timeout", type=float, default=300)
    parser.add_argument("--bulk", type=int, default=30_000,
                        help="licences a batch import adds a third into the load (0: none)")
    parser.add_argument("--baseline", type=int, default=15, help="seconds of the same mix before the load")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()  # our own database number: stale tasks of a past run
    bin_dir = Path(sys.executable).parent
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="load-faults-") as tmp:
        instance = Path(tmp)
        print(f"building {args.pg} with the demo data …", flush=True)
        fresh_database(args.pg)
        registry_port, web_port = free_port(), free_port()
        env = dict(
            os.environ,
            DATABASE_URL=args.pg,
            REDIS_URL=args.redis_url,
            INSTANCE_DIR=str(instance),
            RATELIMIT_ENABLED="0",
            CITY_REGISTRY_URL=f"http://127.0.0.1:{registry_port}",
            CITY_REGISTRY_KEY=REGISTRY_KEY,
            PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
            PYTHONUNBUFFERED="1",
        )
        try:
            # The registry and the worker first, so the demo's 3,000 licences sync as they are issued.
            registry = Proc("registry", [sys.executable, "-m", "city_registry", "serve", "--port",
                                         str(registry_port), "--database-url",
                                         f"sqlite:///{instance / 'registry.db'}", "--key", REGISTRY_KEY,
                                         "--enable-faults"], env, instance / "registry.log")
            procs.append(registry)
            wait_http(f"http://127.0.0.1:{registry_port}/healthz", registry)
            worker = Proc("worker", [str(bin_dir / "celery"), "-A", "celery_app", "worker", "-B",
                                     "-Q", "default,sync", "-c", "2", "--loglevel", "INFO",
                                     "-s", str(instance / "beat-schedule")], env, instance / "worker.log")
            procs.append(worker)
            started = time.monotonic()
            subprocess.run([str(bin_dir / "flask"), "--app", "wsgi", "demo", "load", "--no-progress"],
                           cwd=ROOT, env=env, check=True, capture_output=True)
            print(f"demo loaded in {time.monotonic() - started:.0f} s", flush=True)
            db = Database(args.pg)
            setup = prepare(db, instance)
            paths = instance / "paths.txt"
            paths.write_text("\n".join(setup["mix"]) + "\n")
            script = instance / "mix.lua"
            script.write_text(LUA % {"paths": paths})

            backlog = wait_synced(db, args.lag_timeout)
            print(f"demo backlog synced {backlog:.1f} s after the load finished" if backlog is not None
                  else "demo backlog did not sync", flush=True)
            web = Proc("gunicorn", [str(bin_dir / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{web_port}",
                                    "--timeout", "60", "wsgi:app"], env, instance / "gunicorn.log")
            procs.append(web)
            base = f"http://127.0.0.1:{web_port}"
            wait_http(f"{base}/healthz", web)
            ready = httpx.get(f"{base}/readyz", timeout=10).json()
            time.sleep(1)
            workers = gunicorn_workers(web.p.pid)
            rss_boot = {pid: rss_kib(pid) for pid in workers}
            run_wrk(base + "/", script, 5, args.connections)  # warm-up: imports, caches, pools
            # Baseline in the same run: the same mix, no writer, registry healthy.
            baseline = parse_wrk(run_wrk(base + "/", script, args.baseline, args.connections))
            client = RegistryClient(f"http://127.0.0.1:{registry_port}", REGISTRY_KEY, DISTRICT)
            faults = client.request("PUT", "/_faults", json.dumps({"error_rate": args.error_rate,
                                                                   "status_code": 503}).encode())
            faults.raise_for_status()
            rss_start = {pid: rss_kib(pid) for pid in workers}
            log_offset = (instance / "gunicorn.log").stat().st_size

            peak: dict[int, int] = dict(rss_start)
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(1):
                    for pid in workers:
                        try:
                            peak[pid] = max(peak[pid], rss_kib(pid))
                        except FileNotFoundError:
                            peak[pid] = -1

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            writer = Writer(base, setup, args.write_interval)
            writer.start()
            load_started = time.monotonic()
            load_started_wall = time.time()
            bulk: dict[str, Any] = {}
            importer = threading.Thread(target=bulk_import, args=(env, args, bulk), daemon=True)
            importer.start()
            out = run_wrk(base + "/", script, args.duration, args.connections)
            importer.join(300)
            writer.stop_event.set()
            writer.join(60)
            load_seconds = time.monotonic() - load_started
            sampling.set()
            sampler.join()
            rss_end = {pid: rss_kib(pid) for pid in workers}
            after_load, lag_age = outbox_state(db)
            lag = wait_synced(db, args.lag_timeout)
            final, _ = outbox_state(db)
            delivery = delivery_figures(db, load_started_wall)
            fault_counters = client.request("GET", "/_faults").json()
            access, by_kind = access_log_figures(instance / "gunicorn.log", log_offset)
            worker_log = (instance / "worker.log").read_text(errors="replace")
            worker_errors = worker_log.count("Traceback")
            same_workers = gunicorn_workers(web.p.pid) == workers
            result = parse_wrk(out)
        finally:
            for proc in reversed(procs):
                proc.stop()

    report = {
        "duration_s": args.duration,
        "load_seconds": round(load_seconds, 1),
        "connections": args.connections,
        "error_rate": args.error_rate,
        "mix_sources": setup["counts"],
        "readyz_before_load": ready.get("status"),
        "baseline_wrk_no_writer_no_faults": baseline,
        "wrk": result,
        "server_side_by_kind": by_kind,
        "writer": dict(writer.statuses),
        "bulk_import": bulk,
        "delivery_of_changes_made_during_load": delivery,
        "writer_errors": writer.errors,
        "access_log_5xx": sum(n for s, n in access.items() if s >= 500),
        "access_log_by_status": {str(k): v for k, v in sorted(access.items())},
        "rss_kib": {"boot": rss_boot, "start": rss_start, "peak": peak, "end": rss_end},
        "gunicorn_workers_unchanged": same_workers,
        "outbox_after_load": after_load,
        "oldest_pending_age_after_load_s": round(lag_age, 1) if lag_age is not None else None,
        "sync_lag_to_zero_s": round(lag, 1) if lag is not None else None,
        "outbox_final": final,
        "registry_faults": fault_counters,
        "worker_tracebacks": worker_errors,
        "demo_backlog_sync_s": round(backlog, 1) if backlog is not None else None,
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    five_xx = result["status"].get("5xx", 0) + report["access_log_5xx"] + sum(
        n for k, n in writer.statuses.items() if k.split()[-1].startswith("5"))
    print(
        f"\n| figure | value |\n|---|---|\n"
        f"| public requests (wrk, {args.duration} s, -c{args.connections}) | {result['requests']:,} "
        f"({result['rps']:.0f}/s) |\n"
        f"| baseline, same mix, no writer, registry healthy ({args.baseline} s) | "
        f"{baseline['requests']:,} ({baseline['rps']:.0f}/s), p50 {baseline['latency_ms'].get('p50')} ms, "
        f"p99 {baseline['latency_ms'].get('p99')} ms |\n"
        f"| writer requests | {sum(writer.statuses.values())} |\n"
        f"| 5xx (wrk + writer + access log) | {five_xx} |\n"
        f"| latency p50 / p90 / p99 / max | {result['latency_ms'].get('p50')} / "
        f"{result['latency_ms'].get('p90')} / {result['latency_ms'].get('p99')} / "
        f"{result['latency_ms'].get('max')} ms |\n"
        f"| gunicorn worker RSS start → peak → end (MiB) | "
        + ", ".join(f"{rss_start[p] / 1024:.0f} → {peak[p] / 1024:.0f} → {rss_end[p] / 1024:.0f}"
                    for p in workers)
        + " |\n"
        f"| bulk import during the load (flask licences generate) | {bulk.get('inserted')} inserted, "
        f"{bulk.get('skipped')} skipped as duplicates, in {bulk.get('seconds')} s |\n"
        f"| outbox pending at end of load (oldest, s) | {after_load.get('pending', 0):,} "
        f"({lag_age and round(lag_age, 1)}) |\n"
        f"| changes made during the load: delivered, p50 / p99 / max delay | {delivery['synced']:,} of "
        f"{delivery['rows']:,}, {delivery['delay_p50_s']} / {delivery['delay_p99_s']} / "
        f"{delivery['delay_max_s']} s ({delivery['retried_rows']:,} rows needed a retry) |\n"
        f"| sync lag back to zero after the load | "
        f"{f'{lag:.1f} s' if lag is not None else f'not within {args.lag_timeout:.0f} s'} |\n"
    )
    if five_xx or lag is None:
        sys.exit(1)


if __name__ == "__main__":
    main()
