"""CPU time per request of /verify/<token> and /healthz inside one process: raw WSGI calls to the app,
no server, no client, no profiler. It isolates what the application's own code costs per request
(on 2 cores shared with wrk, HTTP throughput follows it) and is steadier than HTTP figures on a
loaded machine; ``--root`` runs another checkout's code (a ``git archive`` of main) for the baseline.

Builds a fresh PostgreSQL database (dropped and recreated) with 1,000 licences and tokens for 200,
then reports the best of ``--rounds`` rounds of ``--requests`` calls, /healthz first.

    .venv/bin/python -m benchmarks.request_cpu [--pg URL] [--requests 2000] [--rounds 3] [--root PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_request_cpu"


def prepare(url: str, instance: Path) -> list[str]:
    from sqlmodel import col, select

    from benchmarks.licences_bulk import fresh_pg, setup
    from core.auth import SYSTEM
    from demo.synthetic_licences import synthetic_rows
    from licenses.bulk import run_bulk
    from licenses.models import Licence
    from licenses.signing import KeyStore
    from licenses.verification import token_for

    db, dept_id, types = setup(fresh_pg(url))
    run_bulk(db, SYSTEM, dept_id, synthetic_rows(types, 1000), source="benchmark")
    store = KeyStore(instance / "licence_keys")
    with db.transaction() as session:
        licences = list(session.exec(select(Licence).order_by(col(Licence.id)).limit(200)).all())
        paths = [f"/verify/{token_for(session, store, lic)}" for lic in licences]
    db.engine.dispose()
    return paths


def measure(paths: list[str], requests: int, rounds: int) -> dict[str, float]:
    from webapp import create_app

    app = create_app()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  # the access log, one line per call, for the whole run

    def call(path: str) -> None:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000", "HTTP_ACCEPT": "*/*",
        }
        status: list[str] = []

        def start_response(code: str, _headers: Any, _exc_info: Any = None) -> Any:
            status.append(code)
            return None

        b"".join(app.wsgi_app(environ, start_response))
        if not status[0].startswith("200"):
            raise SystemExit(f"{path[:40]}: {status[0]}")

    result = {}
    for name, urls in (("healthz", ["/healthz"]), ("verify", paths)):
        for i in range(200):
            call(urls[i % len(urls)])
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            for i in range(requests):
                call(urls[i % len(urls)])
            best = min(best, (time.process_time() - started) / requests * 1000)
        result[name] = best
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=DEFAULT_PG, help="scratch PostgreSQL database (dropped, recreated)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", help="run the app of another checkout (its code, this database)")
    parser.add_argument("--paths", help=argparse.SUPPRESS)  # internal: the child of --root
    args = parser.parse_args()
    if args.paths:
        paths = Path(args.paths).read_text().split("\n")
        result = measure(paths, args.requests, args.rounds)
        print(f"healthz {result['healthz']:.3f} verify {result['verify']:.3f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        paths = prepare(args.pg, instance)
        (instance / "paths.txt").write_text("\n".join(paths))
        root = Path(args.root).resolve() if args.root else Path(__file__).resolve().parents[1]
        env = dict(os.environ, DATABASE_URL=args.pg, INSTANCE_DIR=str(instance), RATELIMIT_ENABLED="0",
                   CITY_REGISTRY_KEY=secrets.token_urlsafe(32), PUBLIC_BASE_URL="http://127.0.0.1:8000",
                   PYTHONPATH=str(root))
        env.pop("REDIS_URL", None)
        out = subprocess.run(
            # This file run by path: --root may be a checkout without it (main before this script).
            [sys.executable, str(Path(__file__).resolve()), "--paths", str(instance / "paths.txt"),
             "--requests", str(args.requests), "--rounds", str(args.rounds)],
            cwd=root, env=env, capture_output=True, text=True, check=True,
        ).stdout.split()
    load = os.getloadavg()[0]
    print(f"{root}: best of {args.rounds} x {args.requests} requests, load average {load:.1f}")
    print(f"  /healthz {float(out[1]):.3f} ms CPU per request")
    print(f"  /verify  {float(out[3]):.3f} ms CPU per request")


if __name__ == "__main__":
    main()
