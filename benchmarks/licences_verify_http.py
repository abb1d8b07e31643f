"""/verify/<token> throughput with gunicorn, 2 workers, measured with wrk (target: >= 300 requests/s).

Builds a fresh database (SQLite file by default, the embedded mode; ``--pg URL`` for PostgreSQL) with
1,000 licences, signs tokens for 200 of them, starts ``gunicorn -w 2 wsgi:app`` and lets wrk cycle
through the 200 verification URLs. Each request checks the signature, reads the licence's live status
and appends a hash-chained audit row (a write), as in production. The rate limiter is switched off
(RATELIMIT_ENABLED=0) because wrk is a single client. Baseline in the same run: /healthz (one
``SELECT 1``) with the same gunicorn and wrk settings.

    .venv/bin/python -m benchmarks.licences_verify_http [--duration 10] [--pg postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
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

LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, duration: int, script: Path | None = None) -> tuple[float, str]:
    cmd = ["wrk", "-t2", "-c16", f"-d{duration}s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses:\n{out}")
    return float(match.group(1)) if match else 0.0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--pg", help="PostgreSQL URL of a scratch database (dropped and recreated)")
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (gthread when > 1)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        url = fresh_pg(args.pg) if args.pg else f"sqlite:///{instance / 'bench.db'}"
        db, dept_id, types = setup(url)
        run_bulk(db, SYSTEM, dept_id, synthetic_rows(types, 1000), source="benchmark")
        store = KeyStore(instance / "licence_keys")
        with db.transaction() as session:
            licences = list(session.exec(select(Licence).order_by(col(Licence.id)).limit(200)).all())
            paths = [f"/verify/{token_for(session, store, lic)}" for lic in licences]
        db.engine.dispose()
        (instance / "paths.txt").write_text("\n".join(paths) + "\n")
        script = instance / "verify.lua"
        script.write_text(LUA % (instance / "paths.txt"))

        port = free_port()
        env = dict(
            os.environ,
            DATABASE_URL=url,
            INSTANCE_DIR=str(instance),
            RATELIMIT_ENABLED="0",
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        )
        bin_dir = Path(sys.executable).parent
        server = subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                "-w",
                "2",
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
                raise SystemExit(f"the first verification failed: {first.text[:300]}")
            wrk(f"{base}/healthz", 2)  # warm-up
            healthz, _ = wrk(f"{base}/healthz", args.duration)
            verify, out = wrk(base + paths[0], args.duration, script)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=10)
    kind = "PostgreSQL" if args.pg else "SQLite"
    print(
        f"/verify on {kind}, gunicorn -w 2 --threads {args.threads}, wrk -t2 -c16 -d{args.duration}s: "
        f"{verify:,.0f} requests/s "
        f"(baseline /healthz: {healthz:,.0f} requests/s)"
    )
    print(out)


if __name__ == "__main__":
    main()
