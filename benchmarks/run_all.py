"""`make bench`: every benchmark at the sizes of the issues' targets, one after the other.

Each script prints its own figures (with the baseline it measures in the same run); the results
are copied by hand into docs/benchmarks.md with the date and the machine. Several take minutes and
the 1M-entry ones are left to explicit runs (see docs/benchmarks.md for their commands).
"""

from __future__ import annotations

import os
import subprocess
import sys

PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench")

RUNS: list[list[str]] = [
    ["benchmarks.catalog_import", "--pg", PG],
    ["benchmarks.search_latency", "--entries", "50000", "--rounds", "5", "--pg", PG],
    ["benchmarks.search_http"],
    ["benchmarks.licences_bulk", "--count", "140000", "--pg", PG],
    ["benchmarks.licences_verify_offline"],
    ["benchmarks.licences_verify_http", "--pg", PG],
    ["benchmarks.sync_throughput", "--count", "140000", "--broker", "both"],
    ["benchmarks.reports_metrics", "--pg", PG],
    ["benchmarks.cases_import", "--pg", PG, "--cases", "1000000"],
    ["benchmarks.staff_pages"],
]


def main() -> int:
    only = set(sys.argv[1:])
    failed = []
    for args in RUNS:
        if only and args[0].split(".")[-1] not in only:
            continue
        print(f"\n=== {' '.join(args)}", flush=True)
        code = subprocess.call([sys.executable, "-m", *args])
        if code:
            failed.append(args[0])
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
