"""/verify/<token> throughput and latency with gunicorn (2 workers x 4 threads) on PostgreSQL, with wrk.

Issue 15's target: >= 1,000 requests/s at p99 <= 50 ms, with the /healthz floor of the same run beside it.

Builds a fresh database (PostgreSQL by default: ``--pg URL``, dropped and recreated; ``--sqlite`` for
the embedded mode) with 1,000 licences, signs tokens for 200 of them, starts
``gunicorn -w 2 --threads 4 wsgi:app`` and lets wrk cycle through the 200 verification URLs. Each
request checks the signature, reads the licence's live status and appends a verification-log row (a
write), as in production. The rate limiter is switched off (RATELIMIT_ENABLED=0) because wrk is a
single client. The floor in the same run: /healthz (one ``SELECT 1``) with the same gunicorn and wrk
settings. For each, the report gives requests/s and the p50/p95/p99 latency (wrk's own histogram,
read by a Lua ``done`` hook, since ``wrk --latency`` prints no p95).

    .venv/bin/python -m benchmarks.licences_verify_http [--duration 10] [--pg postgresql+psycopg://...]
        [--threads 4] [--workers 2] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import col, select

from benchmarks.licences_bulk import fresh_pg, setup
from core.auth import SYSTEM
from core.config import PROJECT_ROOT
from demo.synthetic_licences import synthetic_rows
from licenses.bulk import run_bulk
from licenses.models import Licence
from licenses.signing import KeyStore
from licenses.verification import token_for

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_verify"

# Prints the latency percentiles (microseconds) after wrk's own report; `paths` is optional.
DONE = """
done = function(summary, latency, requests)
  io.write(string.format("PERCENTILES p50=%d p95=%d p99=%d\\n",
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


@dataclass(frozen=True)
class Run:
    """One wrk run: throughput and latency percentiles in milliseconds."""

    rps: float
    p50: float
    p95: float
    p99: float
    output: str

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.rps:,.0f} requests/s, "
            f"p50 {self.p50:.1f} ms, p95 {self.p95:.1f} ms, p99 {self.p99:.1f} ms"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, duration: int, script: Path, connections: int = 16) -> Run:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    pct = re.search(r"PERCENTILES p50=(\d+) p95=(\d+) p99=(\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    if not rps or not pct:
        raise SystemExit(f"wrk printed no Requests/sec or percentile line:\n{out}")
    p50, p95, p99 = (int(v) / 1000 for v in pct.groups())
    return Run(float(rps.group(1)), p50, p95, p99, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--pg", default=DEFAULT_PG, help="PostgreSQL URL of a scratch database (dropped and recreated)"
    )
    parser.add_argument("--sqlite", action="store_true", help="the embedded mode (SQLite file) instead")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--threads", type=int, default=4, help="gunicorn threads per worker (gthread when > 1)"
    )
    # Latency at a given throughput follows the number of requests in flight (Little's law): with
    # 16 connections on 2 x 4 server threads, half of them queue. A list gives one row per level.
    parser.add_argument(
        "--connections", default="16", help="wrk connections, or a comma-separated list (e.g. 8,16)"
    )
    args = parser.parse_args()
    levels = [int(c) for c in str(args.connections).split(",") if c.strip()]
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        url = f"sqlite:///{instance / 'bench.db'}" if args.sqlite else fresh_pg(args.pg)
        db, dept_id, types = setup(url)
        run_bulk(db, SYSTEM, dept_id, synthetic_rows(types, 1000), source="benchmark")
        store = KeyStore(instance / "licence_keys")
        with db.transaction() as session:
            licences = list(session.exec(select(Licence).order_by(col(Licence.id)).limit(200)).all())
            paths = [f"/verify/{token_for(session, store, lic)}" for lic in licences]
        db.engine.dispose()
        (instance / "paths.txt").write_text("\n".join(paths) + "\n")
        script = instance / "verify.lua"
        script.write_text(LUA % (instance / "paths.txt") + DONE)
        floor_script = instance / "floor.lua"
        floor_script.write_text(DONE)

        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=url,
            INSTANCE_DIR=str(instance),
            RATELIMIT_ENABLED="0",
            # The app refuses to start without the city registry's key; /verify never uses it.
            CITY_REGISTRY_KEY=os.environ.get("CITY_REGISTRY_KEY") or secrets.token_urlsafe(32),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        )
        bin_dir = Path(sys.executable).parent
        server_log = (instance / "gunicorn.log").open("wb")
        server = subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                "-w",
                str(args.workers),
                "--threads",
                str(args.threads),
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
            # The app's access log (one JSON line per request) goes to a file, not over the report.
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            first = httpx.get(base + paths[0])
            if first.status_code != 200 or "证照有效" not in first.text:
                log = (instance / "gunicorn.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"the first verification failed: {first.text[:300]}\n{log}")
            wrk(f"{base}/healthz", 2, floor_script)  # warm-up
            results = []
            for c in levels:
                healthz = wrk(f"{base}/healthz", args.duration, floor_script, c)
                verify = wrk(base + paths[0], args.duration, script, c)
                results.append((c, verify, healthz))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                # A loaded machine may take a while to stop gracefully (and the workers write
                # their waiting verification-log rows); the figures are already taken.
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
            server_log.close()
    kind = "SQLite" if args.sqlite else "PostgreSQL"
    for c, verify, healthz in results:
        print(
            f"{kind}, gunicorn -w {args.workers} --threads {args.threads}, "
            f"wrk -t2 -c{c} -d{args.duration}s, 200 tokens:"
        )
        print(verify.line("  /verify  "))
        print(healthz.line("  /healthz (floor)"))
    print(results[-1][1].output)


if __name__ == "__main__":
    main()
