"""Measure the Gaogang demo load and the staff pages on the embedded SQLite mode.

Usage: .venv/bin/python -m benchmarks.staff_pages [--repeat 30] [--keep DIR]

In one run: builds the catalogue demo (demo.catalog_demo.load: divisions, 1,135 real items, bodies,
claims, no-contact revisions, users) into a fresh SQLite database under a temporary instance folder,
timing it; then a second load (the idempotent reuse path); then renders each staff page ``repeat``
times through the Flask test client as the demo users, next to two baselines measured in the same
run: GET /healthz (one SELECT 1) and GET /login (a template, no query). Prints a Markdown table;
nothing is asserted (figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from catalog.models import ImplementationEntry  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import Database  # noqa: E402


def _timed(fn, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", type=Path, default=None, help="instance folder to use (kept)")
    args = parser.parse_args()

    from demo import catalog_demo
    from webapp import create_app

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_staff_"))
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'bench.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "heads")
    db = Database(url)
    settings = Settings(database_url=url, instance_dir=folder, secret_key="bench-only",  # noqa: S106 (throwaway database) ratelimit_enabled=False,
                        city_registry_database_url=f"sqlite:///{folder / 'registry.db'}",
                        city_registry_key="bench-only-registry-key")

    start = time.perf_counter()
    catalog_demo.load(db, settings, progress=False, echo=lambda _line: None)
    first_load = time.perf_counter() - start
    start = time.perf_counter()
    catalog_demo.load(db, settings, progress=False, echo=lambda _line: None)
    second_load = time.perf_counter() - start

    app = create_app(settings, database=db)
    app.config["WTF_CSRF_ENABLED"] = False
    creds = {u["username"]: u for u in json.loads((folder / "demo_credentials.json").read_text())["users"]}
    with db.transaction() as session:
        entry = session.exec(select(ImplementationEntry).where(ImplementationEntry.level == "5")
                             .order_by(col(ImplementationEntry.id))).first()
        district_entry = session.exec(select(ImplementationEntry).where(ImplementationEntry.level == "4")
                                      .order_by(col(ImplementationEntry.id))).first()
        if entry is None or district_entry is None:
            raise SystemExit("the demo built no town or district entry")
        entry_id, district_id = entry.id, district_entry.id

    rows: list[tuple[str, str, float, float]] = []

    def measure(user: str | None, path: str) -> None:
        client = app.test_client()
        if user:
            response = client.post("/login", data={"username": user, "password": creds[user]["password"]})
            if response.status_code != 302:
                raise SystemExit(f"login of {user} failed: {response.status_code}")
        status = client.get(path).status_code
        if status != 200:
            raise SystemExit(f"{user} GET {path}: {status}")
        median, p95 = _timed(lambda: client.get(path), args.repeat)
        rows.append((user or "anonymous", path, median, p95))

    measure(None, "/healthz")
    measure(None, "/login")
    measure("demo_admin", "/staff/entries/")
    measure("demo_admin", "/staff/entries/?q=证明&status=published")
    measure("demo_admin", "/staff/entries/?page=60")
    measure("demo_editor", "/staff/entries/")
    measure("demo_town", "/staff/entries/")
    measure("demo_admin", "/staff/items/")
    measure("demo_admin", f"/staff/entries/{district_id}")
    measure("demo_town", f"/staff/entries/{entry_id}")
    measure("demo_town", f"/staff/entries/{entry_id}/history")
    measure("demo_admin", "/staff/consistency")
    measure("demo_admin", "/admin/users")
    measure("demo_admin", "/admin/departments")

    print(f"demo load (fresh SQLite): {first_load:.1f} s; second run (reuse): {second_load * 1000:.0f} ms")
    print(f"pages, {args.repeat} GETs each through the Flask test client (ms):\n")
    print("| user | page | median | p95 |")
    print("|---|---|---:|---:|")
    for user, path, median, p95 in rows:
        print(f"| {user} | `{path}` | {median:.1f} | {p95:.1f} |")
    db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
