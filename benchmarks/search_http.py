"""HTTP throughput of GET /api/v1/search with wrk against gunicorn (2 workers) at district scale.

Usage: .venv/bin/python -m benchmarks.search_http [--pg URL] [--duration 20] [--connections 16]
       [--group service|none|both] [--db URL] [--workers 2] [--threads 1] [--warm 6]

Builds a fresh database (the embedded SQLite by default, or PostgreSQL with --pg) holding the
district-size synthetic catalogue (`flask search generate --size district`, about 14.5k entries),
starts `gunicorn -w 2 wsgi:app` on it with rate limiting off, and runs wrk (Debian package) with a
Lua script that cycles through benchmarks.search_latency.QUERIES. The same run measures
GET /healthz (one trivial SELECT) as the floor of what this stack can serve. Prints a Markdown table.

``--distinct`` (on by default) adds a grouped run in which no query string repeats (several thousand
from ``search_latency.distinct_queries``, each wrk thread on its own half): the API keeps a cache of
answers (catalog.search.cache), and the 40 repeated queries measure it at its hits, these at its misses.

``--db`` reuses a database built before (by this module's ``district_catalogue``) instead of building
one; ``--threads N`` runs gunicorn's gthread worker (what the Procfile runs, ``WEB_THREADS`` 4; it keeps
connections alive, the sync worker closes each one); ``--warm`` is the number of warm-up passes over
the repeated queries before they are measured (a pass reaches one worker per query at random).

The search is measured grouped (``group=service``, one result per service: what the portal shows and
the API's default; issue 14's targets are for this mode) and, with ``--group both`` (the default),
also flat (``group=none``) in the same run, so the cost of grouping is read against its own baseline.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import search_synth  # noqa: E402
from benchmarks.search_latency import QUERIES, distinct_queries  # noqa: E402
from catalog.search import rebuild_index  # noqa: E402
from core.db import Database  # noqa: E402
from tests.conftest import _ensure_pg_database, migrate, reset_and_migrate_pg  # noqa: E402

LUA = """
paths = {%s}
i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""
# Each wrk thread walks its own stride of the list (thread 0 the even places, thread 1 the odd), so
# no query string is sent twice in a run shorter than the list: every request misses a results cache.
LUA_DISTINCT = """
paths = {%s}
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  i = tid
end
request = function()
  local path = paths[(i %% #paths) + 1]
  i = i + 2
  return wrk.format("GET", path)
end
"""


def district_catalogue(url: str, *, pg: bool) -> int:
    """A fresh migrated database (PostgreSQL: dropped and recreated) holding the district-scale
    synthetic catalogue, indexed; returns the number of entries."""
    if pg:
        _ensure_pg_database(url)
        reset_and_migrate_pg(url)
    else:
        migrate(url)
    db = Database(url)
    with db.transaction() as session:
        n = search_synth.generate(session, "district")
    with db.transaction() as session:
        rebuild_index(session)
    db.engine.dispose()
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, script: Path | None, duration: int, connections: int) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise SystemExit(f"wrk printed no Requests/sec line:\n{out}")
    result: dict[str, float] = {"rps": float(rps.group(1))}
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            result[f"p{pct}"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = float(m.group(1)) if m else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["non2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    result["socket"] = sum(float(x) for x in errors.groups()) if errors else 0.0
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (default: embedded SQLite)")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--db", default=None, help="reuse this built database")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (more than 1: the gthread worker)"
    )
    parser.add_argument(
        "--warm", type=int, default=6,
        help="warm-up passes over the repeated queries (each pass reaches one worker per query at random)",
    )
    parser.add_argument("--group", choices=("service", "none", "both"), default="both")
    parser.add_argument(
        "--distinct", action=argparse.BooleanOptionalAction, default=True,
        help="also run grouped search with every query string distinct (cache misses; default on)",
    )
    args = parser.parse_args()
    modes: tuple[str, ...] = ("service", "none") if args.group == "both" else (args.group,)
    if args.distinct:
        modes = (*modes, "distinct")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install -y wrk")

    tmp = Path(tempfile.mkdtemp(prefix="search_http_"))
    if args.db:
        url, n = args.db, 0
    else:
        url = args.pg or f"sqlite:///{tmp / 'district.db'}"
        n = district_catalogue(url, pg=bool(args.pg))

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=url,
        RATELIMIT_ENABLED="0",
        INSTANCE_DIR=str(tmp),
        CITY_REGISTRY_DATABASE_URL=f"sqlite:///{tmp / 'registry.db'}",
    )
    env["SECRET_KEY"] = "bench-" + os.urandom(8).hex()  # a throwaway server
    # The app refuses to start without the city registry's key (nothing here syncs): a throwaway one.
    env["CITY_REGISTRY_KEY"] = os.environ.get("CITY_REGISTRY_KEY") or secrets.token_urlsafe(32)
    gunicorn = subprocess.Popen(
        # --timeout 120: a cold worker on a loaded shared machine must not be killed while it warms up.
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "-c",
            "python:webapp.gunicorn_conf",  # as the Procfile runs it
            "-w",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--timeout",
            "120",
            "-b",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()  # noqa: S310
                break
            except OSError:
                time.sleep(0.2)
        searches = {}
        for mode in modes:
            if mode == "distinct":
                # Not warmed: a warm-up would put them in the cache. The workers are warm already.
                queries = distinct_queries()
                script_text = LUA_DISTINCT % ", ".join(
                    '"/api/v1/search?group=service&q=' + quote(q) + '"' for q in queries
                )
                script = tmp / "search_distinct.lua"
                script.write_text(script_text)
                searches[mode] = wrk(base + "/", script, args.duration, args.connections)
                if searches[mode]["requests"] > len(queries):
                    print(f"warning: {searches[mode]['requests']:.0f} requests > {len(queries)} distinct "
                          "queries: the list wrapped, later requests could hit the cache", file=sys.stderr)
                continue
            paths = ", ".join(f'"/api/v1/search?group={mode}&q=' + quote(q) + '"' for q in QUERIES)
            script = tmp / f"search_{mode}.lua"
            script.write_text(LUA % paths)
            # Warm every worker's cache the way the benchmark will use them: a request reaches one
            # worker at random, so one pass leaves each worker about half the queries to compute
            # during the measured run (the misses of a cold cache, not its hits). Each further pass
            # halves what is left: 6 passes leave about 1 in 64 per worker (issue 14 item 10: with one
            # pass, about 20 of the 40 grouped answers were computed inside the measured run).
            for _ in range(args.warm):
                for q in QUERIES:
                    url_q = f"{base}/api/v1/search?group={mode}&q={quote(q)}"
                    # A cold worker loads the segmenter dictionary first (about 1 s, more when loaded).
                    urllib.request.urlopen(url_q, timeout=60).read()  # noqa: S310
            searches[mode] = wrk(base + "/", script, args.duration, args.connections)
        floor = wrk(base + "/healthz", None, max(5, args.duration // 2), args.connections)
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)

    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    workers = f"-w {args.workers}" + (f" --threads {args.threads}" if args.threads > 1 else "")
    size = f"{n:,} entries" if n else "reused database"
    print(
        f"\n### HTTP, gunicorn {workers}, wrk -t2 -c{args.connections} -d{args.duration}s, {dialect}, "
        f"{size}, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| endpoint | requests/s | p50 (ms) | p90 (ms) | p99 (ms) | requests | non-2xx | socket errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    labels = {
        "service": "grouped, group=service",
        "none": "flat, group=none",
        "distinct": "grouped, every query distinct",
    }
    rows = [(f"GET /api/v1/search (mixed queries, {labels[m]})", r) for m, r in searches.items()]
    for label, r in [*rows, ("GET /healthz (floor)", floor)]:
        print(
            f"| {label} | {r['rps']:.0f} | {r.get('p50', 0):.1f} | {r.get('p90', 0):.1f} | "
            f"{r.get('p99', 0):.1f} | {r['requests']:.0f} | {r['non2xx']:.0f} | {r['socket']:.0f} |"
        )


if __name__ == "__main__":
    main()
