"""The drain's CPU per record, by process: the district's drain (licenses.sync.drain, in this process, one
lane), its PostgreSQL backend, the registry and the registry's PostgreSQL backends. CPU time, unlike
records/s, hardly depends on what else the machine runs, so code can be compared on a shared machine.

    python -m benchmarks.sync_drain_cpu --count 40000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_sync

Uses the outbox seeded by benchmarks.sync_throughput (same --database-url; run it once first) and a fresh
registry on PostgreSQL (``<district database>_registry_cpu``, dropped and created). The drain runs in
this process, so its CPU is ``time.process_time()``; the others are read from /proc (same machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sync_throughput import KEY, registry_url_for, reset_outbox, start_registry  # noqa: E402
from core.db import Database  # noqa: E402
from licenses import sync  # noqa: E402
from workers.registry_client import RegistryClient  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def cpu_of(match: str) -> float:
    """CPU seconds used so far by the processes whose command line contains ``match``."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if match not in cmd:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / HZ


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_sync"
    )
    args = parser.parse_args()
    db = Database(args.database_url)
    district_db = sa.engine.make_url(args.database_url).database or ""
    n = reset_outbox(db, args.count)
    tmp = Path(tempfile.mkdtemp(prefix="sync-cpu-"))
    registry_db = registry_url_for(args.database_url, tmp, "cpu", "postgresql")
    registry, url = start_registry(tmp, registry_db)
    client = RegistryClient(url, KEY, "321203", timeout=60)
    try:
        # One batch first, untimed: connections opened, statements prepared.
        sync.drain(db, client, args.batch, budget_s=0.0)
        registry_pg = sa.engine.make_url(registry_db).database or ""
        before = (time.process_time(), cpu_of(f" {district_db} "), cpu_of(f" {registry_pg} "),
                  cpu_of(f"--port {url.rsplit(':', 1)[1]} "), time.monotonic())
        report = sync.drain(db, client, args.batch, budget_s=3600.0)
        after = (time.process_time(), cpu_of(f" {district_db} "), cpu_of(f" {registry_pg} "),
                 cpu_of(f"--port {url.rsplit(':', 1)[1]} "), time.monotonic())
    finally:
        client.close()
        registry.stop()
    done = report.totals.claimed
    per = [round((b - a) / done * 1e6, 1) for a, b in zip(before[:4], after[:4], strict=True)]
    row = {"records": done, "of": n, "seconds": round(after[4] - before[4], 2),
           "records_per_s": round(done / (after[4] - before[4])), "drain_us": per[0],
           "district_pg_us": per[1], "registry_pg_us": per[2], "registry_us": per[3],
           "district_us": round(per[0] + per[1], 1), "load": round(os.getloadavg()[0], 2)}
    print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
