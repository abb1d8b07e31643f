"""The reference registry's CPU per record on PostgreSQL: its Python (``RegistryApp.handle``, in this
process, everything the HTTP front hands it: signature, JSON, validation, the store, the answer) and its
PostgreSQL backends, for new records and then the same records again (duplicates). CPU time, unlike
records/s, hardly depends on what else the machine runs, so code can be compared on a shared machine.

    python -m benchmarks.registry_cpu --count 40000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_sync [--profile]

Uses the outbox seeded by benchmarks.sync_throughput (same --database-url) and a fresh registry database
(``<district database>_registry_cpu_app``, dropped and created). Request bodies are built and signed
beforehand exactly as the district's drain builds them (``licenses.sync.envelope_json``), untimed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sync_drain_cpu import cpu_of  # noqa: E402
from benchmarks.sync_throughput import KEY, T, registry_url_for  # noqa: E402
from city_registry.app import RegistryApp  # noqa: E402
from city_registry.store import RegistryStore  # noqa: E402
from core.db import Database  # noqa: E402
from licenses.sync import envelope_json  # noqa: E402
from workers.registry_client import sign  # noqa: E402

PATH = "/api/v1/licences/batch"


def bodies(db: Database, count: int, batch: int) -> list[tuple[bytes, dict[str, str]]]:
    """Signed request bodies of ``count`` outbox rows in batches of ``batch`` (as the drain sends them)."""
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(T.c.id, T.c.idem_key, sa.cast(T.c.payload, sa.Text).label("payload"), T.c.request_id)
            .order_by(T.c.id).limit(count)
        ).all()
    out = []
    ts = str(int(time.time()))
    for i in range(0, len(rows), batch):
        parts = [envelope_json(r).encode() for r in rows[i : i + batch]]
        body = b'{"batch_id":' + orjson.dumps(uuid.uuid4().hex) + b',"records":[' + b",".join(parts) + b"]}"
        headers = {"X-Client-Id": "321203", "X-Timestamp": ts,
                   "X-Signature": sign(KEY, "POST", PATH, ts, body), "Content-Length": str(len(body))}
        out.append((body, headers))
    return out


def run(app: RegistryApp, requests: list[tuple[bytes, dict[str, str]]], registry_pg: str,
        expect: str, profile: cProfile.Profile | None) -> dict[str, float]:
    before = (time.process_time(), cpu_of(f" {registry_pg} "), time.monotonic())
    if profile is not None:
        profile.enable()
    for body, headers in requests:
        reply = app.handle("POST", PATH, headers, headers["Content-Length"], io.BytesIO(body).read)
        if reply.status != 200:
            raise RuntimeError(reply.body[:300])
        results = orjson.loads(reply.body)["results"]
        if results[0]["status"] != expect or results[-1]["status"] != expect:
            raise RuntimeError(f"expected {expect}: {results[0]}")
    if profile is not None:
        profile.disable()
    after = (time.process_time(), cpu_of(f" {registry_pg} "), time.monotonic())
    n = records_of(requests)
    python_us, pg_us = ((b - a) / n * 1e6 for a, b in zip(before[:2], after[:2], strict=True))
    return {"python_us": round(python_us, 1), "registry_pg_us": round(pg_us, 1),
            "total_us": round(python_us + pg_us, 1), "records_per_s": round(n / (after[2] - before[2]))}


def records_of(requests: list[tuple[bytes, dict[str, str]]]) -> int:
    return sum(len(orjson.loads(body)["records"]) for body, _ in requests)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_sync"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the new records' pass (top 30)")
    args = parser.parse_args()
    db = Database(args.database_url)
    requests = bodies(db, args.count, args.batch)
    registry_db = registry_url_for(args.database_url, Path(tempfile.gettempdir()), "cpu_app", "postgresql")
    app = RegistryApp(RegistryStore(registry_db), KEY)
    registry_pg = sa.engine.make_url(registry_db).database or ""
    profile = cProfile.Profile() if args.profile else None
    try:
        # One batch first, untimed: connections opened, caches warm; then the rest.
        warm, rest = requests[:1], requests[1:]
        run(app, warm, registry_pg, "created", None)
        created = run(app, rest, registry_pg, "created", profile)
        duplicates = run(app, rest, registry_pg, "duplicate", None)
    finally:
        app.store.engine.dispose()
    row = {"records": records_of(rest), "batch": args.batch, "created": created, "duplicates": duplicates,
           "load": round(os.getloadavg()[0], 2)}
    print(json.dumps(row), flush=True)
    if profile is not None:
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
