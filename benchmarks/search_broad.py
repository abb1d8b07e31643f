"""Latency of broad queries (tens of thousands of matching entries) on an existing catalogue, grouped and
flat, median of ``--rounds`` after a warm-up; ``--profile`` prints a cProfile of the first query grouped.

Usage (build the 1M catalogue once with benchmarks.search_latency, which leaves a SQLite file given by
``--sqlite`` in place, or point at its PostgreSQL database):
  .venv/bin/python -m benchmarks.search_latency --entries 1000000 --only sqlite --sqlite /tmp/s1m.db
  .venv/bin/python -m benchmarks.search_broad --database-url sqlite:////tmp/s1m.db [证 社保 ...] [--profile]
Prints one line per query and mode; nothing is asserted (figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import search as engine  # noqa: E402
from core.db import Database  # noqa: E402

BROAD = ["证", "办身份证", "孩子上学", "社保", "许可", "医保"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("queries", nargs="*")
    args = parser.parse_args()
    queries = args.queries or BROAD
    db = Database(args.database_url)
    with db.session() as session:
        for q in queries:  # warm-up: page cache, dictionaries, statement cache
            engine.search(session, q, group=True)
            engine.search(session, q, group=False)
        for q in queries:
            for group in (False, True):
                times = []
                for _ in range(args.rounds):
                    started = time.perf_counter()
                    result = engine.search(session, q, page=1, limit=10, group=group)
                    times.append((time.perf_counter() - started) * 1000)
                print(f"{q} {'grouped' if group else 'flat'}: median {statistics.median(times):.1f} ms, "
                      f"total {result.total}", flush=True)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.rounds):
                engine.search(session, queries[0], group=True)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(35)
    db.engine.dispose()


if __name__ == "__main__":
    main()
