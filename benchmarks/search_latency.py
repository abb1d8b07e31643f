"""In-process search latency (p50/p95/p99) against a plain LIKE '%q%' scan, and index build time.

Usage:
  .venv/bin/python -m benchmarks.search_latency --entries 50000 [--pg URL] [--sqlite PATH] [--rounds 5]
      [--group none|service|both]
  .venv/bin/python -m benchmarks.search_latency --entries 1000000 ...

For each database (a fresh schema built with the migrations) it:
  1. writes the synthetic catalogue (`flask search generate`: real 泰州 divisions, real item names;
     50k = the first 50,000 entries of the city size, 1M = the province size),
  2. rebuilds the search index from scratch (timed: the "index build"),
  3. runs the fixed mixed query list below ``rounds`` times through catalog.search.search (first page
     of 10, facets and total included), after one warm-up pass; flat (``group=none``, the default)
     and/or grouped (one result per service, ``--group service``; ``both`` interleaves the two modes
     query by query, so each is read against the other under the same load),
  4. runs the baseline in the same process: for each query a LIKE '%q%' scan of the published
     entries' names giving what a result page needs (the count and the first 10 rows).
Prints a Markdown table; nothing is asserted (figures go to docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import search_synth  # noqa: E402
from catalog import search as engine  # noqa: E402
from catalog.models import EntryStatus, ImplementationEntry  # noqa: E402
from core.db import Database, table_of  # noqa: E402
from tests.conftest import _ensure_pg_database, migrate, reset_and_migrate_pg  # noqa: E402

# A fixed mix of what citizens type: 1- and 2-character words, longer keywords, exact official names,
# everyday words (aliases), full pinyin, initials, typos and queries with no answer.
QUERIES = [
    "证",
    "社保",
    "护照",
    "医保",
    "低保",
    "驾照",
    "户口",
    "失业",
    "残疾人证",
    "养老保险",
    "教师资格",
    "个体工商户",
    "出生医学证明",
    "最低生活保障",
    "城乡居民基本养老保险待遇申领",
    "食品(含保健食品)经营许可核发",
    "社会保障卡补领、换领、换发",
    "公共租赁住房申请资格审核认定",
    "开饭店要办什么证",
    "办身份证",
    "孩子上学",
    "养老金怎么领",
    "huzhao",
    "canjirenzheng",
    "shehuibaozhangka",
    "gongjijin",
    "cjrz",
    "zdshbz",
    "sbk",
    "ylbx",
    "最低生活报障",
    "残疾人正新办",
    "教师资各认定",
    "失页登记",
    "潜水艇执照",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "火星移民申请",
    "登记 养老",
    "许可",
]


def distinct_queries() -> list[str]:
    """Several thousand different query strings (no two alike, none of QUERIES): every real item name,
    its first 2, 3, 4 and 6 characters, its last 3 and 4 and the 3rd to 6th, in a shuffled but fixed
    order. What citizens type is not a few repeated strings; these measure a results cache's misses."""
    import random

    from benchmarks.search_synth import read_items

    seen = set(QUERIES)
    out: list[str] = []
    for item in read_items():
        name = item.name
        for q in (name, name[:2], name[:3], name[:4], name[:6], name[-4:], name[-3:], name[2:6]):
            if q not in seen:
                seen.add(q)
                out.append(q)
    random.Random(14).shuffle(out)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def like_page(session: Any, q: str) -> int:
    ent = table_of(ImplementationEntry)
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    cond = (ent.c.status == EntryStatus.PUBLISHED.value, ent.c.name.like(f"%{escaped}%", escape="\\"))
    total = session.execute(sa.select(sa.func.count()).select_from(ent).where(*cond)).scalar_one()
    session.execute(sa.select(ent.c.task_code, ent.c.name).where(*cond).order_by(ent.c.id).limit(10)).all()
    return int(total)


MODES = {"none": (False,), "service": (True,), "both": (False, True)}


def run(db: Database, entries: int, rounds: int, group: str = "none") -> dict[str, Any]:
    size = "province" if entries > 150_000 else "city"
    out: dict[str, Any] = {"dialect": db.dialect}
    started = time.perf_counter()
    with db.transaction() as session:
        out["entries"] = search_synth.generate(session, size, limit=entries)
    out["generate_s"] = time.perf_counter() - started
    print(
        f"[{db.dialect}] generated {out['entries']:,} in {out['generate_s']:.1f}s",
        file=sys.stderr,
        flush=True,
    )
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    started = time.perf_counter()
    with db.transaction() as session:
        engine.rebuild_index(session)
    out["index_s"] = time.perf_counter() - started
    print(f"[{db.dialect}] indexed in {out['index_s']:.1f}s", file=sys.stderr, flush=True)
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()

    modes = MODES[group]
    search_ms: dict[bool, list[float]] = {g: [] for g in modes}
    like_ms: list[float] = []
    per_query: dict[bool, dict[str, list[float]]] = {g: {q: [] for q in QUERIES} for g in modes}
    totals: dict[str, tuple[int, ...]] = {}
    with db.session() as session:
        for q in QUERIES:  # warm-up (page cache, pinyin dictionary, statement cache)
            for g in modes:
                engine.search(session, q, group=g)
            like_page(session, q)
        for _ in range(rounds):
            for q in QUERIES:
                counts = []
                for g in modes:
                    t = time.perf_counter()
                    result = engine.search(session, q, page=1, limit=10, group=g)
                    dt = (time.perf_counter() - t) * 1000
                    search_ms[g].append(dt)
                    per_query[g][q].append(dt)
                    counts.append(result.total)
                t = time.perf_counter()
                n_like = like_page(session, q)
                like_ms.append((time.perf_counter() - t) * 1000)
                totals[q] = (*counts, n_like)
        session.rollback()
    out.update(
        modes=modes,
        search_p50={g: statistics.median(v) for g, v in search_ms.items()},
        search_p95={g: pct(v, 95) for g, v in search_ms.items()},
        search_p99={g: pct(v, 99) for g, v in search_ms.items()},
        search_mean={g: statistics.fmean(v) for g, v in search_ms.items()},
        like_p50=statistics.median(like_ms),
        like_p99=pct(like_ms, 99),
        slowest={
            g: sorted(((statistics.median(v), q) for q, v in pq.items()), reverse=True)[:5]
            for g, pq in per_query.items()
        },
        totals=totals,
        n=len(like_ms),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_search"
        ),
    )
    parser.add_argument("--sqlite", default=None, help="SQLite file (default: a temporary one)")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    parser.add_argument(
        "--group",
        choices=list(MODES),
        default="none",
        help="flat results (none), one result per service (service), or both in the same run",
    )
    args = parser.parse_args()

    results = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            path = args.sqlite or str(Path(tmp) / "bench.db")
            if os.path.exists(path):
                os.remove(path)
            url = f"sqlite:///{path}"
            migrate(url)
            db = Database(url)
            results.append(run(db, args.entries, args.rounds, args.group))
            db.engine.dispose()
    if args.only in (None, "postgresql"):
        _ensure_pg_database(args.pg)
        reset_and_migrate_pg(args.pg)
        db = Database(args.pg)
        results.append(run(db, args.entries, args.rounds, args.group))
        db.engine.dispose()

    print(f"\n### Search latency, {args.entries:,} entries ({len(QUERIES)} queries x {args.rounds} rounds)\n")
    print(
        "| database | mode | entries | generate (s) | index build (s) | search p50 (ms) | search p95 (ms) | "
        "search p99 (ms) | "
        "search mean (ms) | LIKE p50 (ms) | LIKE p99 (ms) | p50 speed-up |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for g in r["modes"]:
            mode = "grouped" if g else "flat"
            print(
                f"| {r['dialect']} | {mode} | {r['entries']:,} | {r['generate_s']:.1f} | {r['index_s']:.1f} |"
                f" {r['search_p50'][g]:.2f} | {r['search_p95'][g]:.2f} | {r['search_p99'][g]:.2f} | "
                f"{r['search_mean'][g]:.2f} | {r['like_p50']:.2f} | {r['like_p99']:.2f} | "
                f"{r['like_p50'] / r['search_p50'][g]:.1f}x |"
            )
    for r in results:
        for g in r["modes"]:
            print(
                f"\n{r['dialect']} {'grouped' if g else 'flat'} slowest queries (median ms): "
                + ", ".join(f"{q!r} {ms:.1f}" for ms, q in r["slowest"][g])
            )
        heads = "/".join(["grouped" if g else "flat" for g in r["modes"]] + ["LIKE"])
        print(
            f"{r['dialect']} totals ({heads}): "
            + ", ".join(f"{q!r} {'/'.join(map(str, t))}" for q, t in list(r["totals"].items())[:12])
        )


if __name__ == "__main__":
    main()
