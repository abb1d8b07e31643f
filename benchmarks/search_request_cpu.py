"""Cost per request of GET /api/v1/search inside one process: raw WSGI calls to the app, no server,
no client (as benchmarks.request_cpu does for /verify). Steadier than HTTP on a loaded shared machine:
on two cores shared with wrk, the HTTP throughput of gunicorn's sync workers follows the app's own cost.

Builds the district-scale synthetic catalogue (benchmarks.search_synth, about 14.5k entries) in a
fresh database (an SQLite file by default, PostgreSQL with ``--pg``, dropped and recreated), then
reports for /healthz and for the search (``group=service``, the API default, cycling through
benchmarks.search_latency.QUERIES; ``group=none``; and ``distinct``: grouped, every request a query
string not asked before in the process, from ``search_latency.distinct_queries``, so a cache of
results misses on each) the best of ``--rounds`` rounds: process CPU ms per request
(the app's Python; on PostgreSQL the server's work is not in it) and wall ms per request (with it).
``--profile N`` prints a cProfile of N grouped requests with distinct queries instead (with
``--profile-hits``: of the repeated queries, i.e. the cache's hits); ``--counts`` prints, instead of
times, what a request costs in SQL statements, other driver commands and Python function calls (the same
on a loaded machine). ``--root``
runs another checkout's code (e.g. a ``git archive`` of main) against the same database, for the
baseline.

    .venv/bin/python -m benchmarks.search_request_cpu [--pg URL] [--requests 400] [--rounds 3]
        [--root PATH] [--profile 300]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def prepare(url: str, pg: bool) -> int:
    sys.path.insert(0, str(ROOT))
    from benchmarks.search_http import district_catalogue

    return district_catalogue(url, pg=pg)


def child(args: argparse.Namespace) -> None:
    from webapp import create_app

    lists = json.loads(Path(args.queries).read_text(encoding="utf-8"))
    queries, distinct = lists["queries"], lists["distinct"]

    app = create_app()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  # the access log, one line per call, for the whole run

    def call(path: str) -> None:
        p, _, qs = path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET", "PATH_INFO": p, "QUERY_STRING": qs, "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, "wsgi.multithread": False,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000", "HTTP_ACCEPT": "*/*",
        }
        status: list[str] = []

        def start_response(code: str, _headers: Any, _exc_info: Any = None) -> Any:
            status.append(code)
            return None

        b"".join(app.wsgi_app(environ, start_response))
        if not status[0].startswith("200"):
            raise SystemExit(f"{path[:60]}: {status[0]}")

    grouped = [f"/api/v1/search?group=service&q={quote(q)}" for q in queries]
    flat = [f"/api/v1/search?group=none&q={quote(q)}" for q in queries]
    for path in grouped + flat:  # warm-up: segmenter dictionary, statement caches, page cache
        call(path)
    if args.counts:
        counts(app, call, ["/healthz"] * 200, "healthz")
        counts(app, call, grouped * 5, "grouped")
        counts(app, call, [f"/api/v1/search?group=service&q={quote(q)}" for q in distinct[-400:]], "distinct")
        return
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        if args.profile_hits:
            # The cache's hits: the repeated queries, all answered once already by the warm-up.
            paths = [grouped[i % len(grouped)] for i in range(args.profile)]
        else:
            # Distinct queries: with a cache of answers, repeated ones would profile only its hits.
            paths = [f"/api/v1/search?group=service&q={quote(q)}" for q in distinct[-args.profile :]]
        prof.enable()
        for path in paths:
            call(path)
        prof.disable()
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(45)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(30)
        return

    def rounds(urls: list[str]) -> tuple[float, float]:
        cpu = wall = float("inf")
        for _ in range(args.rounds):
            c, w = time.process_time(), time.perf_counter()
            for i in range(args.requests):
                call(urls[i % len(urls)])
            cpu = min(cpu, (time.process_time() - c) / args.requests * 1000)
            wall = min(wall, (time.perf_counter() - w) / args.requests * 1000)
        return cpu, wall

    out = {"healthz": rounds(["/healthz"]), "grouped": rounds(grouped), "flat": rounds(flat)}
    # Every request a query string this process has not seen (a results cache misses on each).
    fresh = iter(distinct)
    cpu = wall = float("inf")
    for _ in range(args.rounds):
        urls = [f"/api/v1/search?group=service&q={quote(next(fresh))}" for _ in range(args.requests)]
        c, w = time.process_time(), time.perf_counter()
        for u in urls:
            call(u)
        cpu = min(cpu, (time.process_time() - c) / args.requests * 1000)
        wall = min(wall, (time.perf_counter() - w) / args.requests * 1000)
    out["distinct"] = (cpu, wall)
    for name, (c, w) in out.items():
        print(f"{name} {c:.3f} {w:.3f}")


def counts(app: Any, call: Any, paths: list[str], name: str) -> None:
    """What a request costs, counted rather than timed (the same on a loaded machine): SQL statements,
    the driver's other commands (BEGIN, COMMIT on PostgreSQL; the pool's pre-ping is neither) and
    Python function calls (cProfile), per request."""
    import cProfile
    import pstats

    import sqlalchemy as sa

    seen = {"statements": 0, "commands": 0}

    def statement(*_args: Any) -> None:
        seen["statements"] += 1

    sa.event.listen(app.extensions["gaogang.db"].engine, "before_cursor_execute", statement)
    try:
        from psycopg._connection_base import BaseConnection

        command = BaseConnection._exec_command

        def counted(self: Any, *a: Any, **k: Any) -> Any:
            seen["commands"] += 1
            return command(self, *a, **k)

        BaseConnection._exec_command = counted  # type: ignore[method-assign]  # counting, this process only
    except ImportError:
        command = None
    prof = cProfile.Profile()
    prof.enable()
    for path in paths:
        call(path)
    prof.disable()
    sa.event.remove(app.extensions["gaogang.db"].engine, "before_cursor_execute", statement)
    if command is not None:
        BaseConnection._exec_command = command  # type: ignore[method-assign]  # restored
    calls = pstats.Stats(prof, stream=io.StringIO()).total_calls  # type: ignore[attr-defined]  # set by Stats
    n = len(paths)
    print(f"count {name} {seen['statements'] / n:.2f} {seen['commands'] / n:.2f} {calls / n:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pg", default=None, help="scratch PostgreSQL database (dropped, recreated)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument(
        "--counts", action="store_true",
        help="statements, driver commands and Python calls per request (for /healthz, hits, distinct)",
    )
    parser.add_argument(
        "--profile-hits", action="store_true", help="with --profile: the repeated queries (cache hits)"
    )
    parser.add_argument("--root", action="append", help="run the app of another checkout (repeatable)")
    parser.add_argument("--db", help="reuse this database URL (already built) instead of building one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--queries", help=argparse.SUPPRESS)  # the child's query lists (JSON)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp)
        if args.db:
            url = args.db
        else:
            url = args.pg or f"sqlite:///{instance / 'district.db'}"
            n = prepare(url, bool(args.pg))
            print(f"built {n:,} entries in {url.split('@')[-1]}")
        sys.path.insert(0, str(ROOT))
        from benchmarks.search_latency import QUERIES, distinct_queries

        lists = instance / "queries.json"
        lists.write_text(json.dumps({"queries": QUERIES, "distinct": distinct_queries()}), encoding="utf-8")
        roots = [Path(r).resolve() for r in args.root] if args.root else [ROOT]
        for root in roots:
            env = dict(os.environ, DATABASE_URL=url, INSTANCE_DIR=str(instance), RATELIMIT_ENABLED="0",
                       CITY_REGISTRY_KEY=secrets.token_urlsafe(32), PUBLIC_BASE_URL="http://127.0.0.1:8000",
                       CITY_REGISTRY_DATABASE_URL=f"sqlite:///{instance / 'registry.db'}",
                       PYTHONPATH=str(root))
            env.pop("REDIS_URL", None)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--requests", str(args.requests),
                   "--rounds", str(args.rounds), "--profile", str(args.profile), "--queries", str(lists),
                   *(["--profile-hits"] if args.profile_hits else []),
                   *(["--counts"] if args.counts else [])]
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
            load = os.getloadavg()[0]
            what = "counts" if args.counts else f"best of {args.rounds} x {args.requests} requests"
            print(f"{root}: {what}, load average {load:.1f}")
            if args.profile:
                print(proc.stdout)
                continue
            for line in proc.stdout.split("\n"):
                if line.startswith("count "):
                    _, name, stmts, cmds, calls = line.split()
                    print(f"  {name:9s} {stmts:>6s} statements  {cmds:>5s} other commands  "
                          f"{calls:>6s} Python calls per request")
                elif line.strip():
                    name, cpu, wall = line.split()
                    print(f"  {name:9s} {float(cpu):8.3f} ms CPU  {float(wall):8.3f} ms wall per request")


if __name__ == "__main__":
    main()
