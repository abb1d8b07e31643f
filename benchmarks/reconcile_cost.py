"""Reconciliation cost: the digest tree (``tree``) beside the per-(issuer, day) groups (``groups``,
the method before issue #16) on the same data in the same run, at several damage levels.

    .venv/bin/python -m benchmarks.reconcile_cost --count 1000000 --damage 0,0.1,1

Both sides live on PostgreSQL: the district's outbox in one database, the reference registry's table
in another, the registry served over loopback HTTP by ``python -m city_registry serve``. Rows are
built with one INSERT … SELECT generate_series per side (not the ORM): every licence is one outbox row
``sent``, half of them at revision 2 (suspended), spread over ``--issuers`` departments and
``--days`` days; the registry holds the same. The outbox rows all reference one real licence row (the
reconciliation reads the outbox only) and their identifiers carry a placeholder check character
(nothing here validates them). Damage, applied to the registry only, in equal thirds: rows deleted,
rows rolled back to revision 1 (valid), rows added that the district never issued. Each method runs
in a transaction that is rolled back, so both see the same state; the damage is undone before the
next level.

Per run: requests, bytes sent and received (HTTP bodies), rows the registry listed record by record,
rows read from the two tables (``pg_stat_user_tables``: seq_tup_read + idx_tup_fetch, read after the
statistics are flushed), seconds, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sync_throughput import KEY, ensure_database, seed, start_registry  # noqa: E402
from city_registry import sums as registry_sums  # noqa: E402
from city_registry.store import RegistryStore  # noqa: E402
from core.auth import SYSTEM, Principal, User  # noqa: E402
from core.db import Database, id_of, make_engine  # noqa: E402
from demo import synthetic_licences  # noqa: E402
from licenses import bulk, grants, recon_state, reconcile, reconcile_tree  # noqa: E402
from licenses.models import Licence, LicenceType  # noqa: E402
from workers.registry_client import RegistryClient  # noqa: E402

TYPE_CODE = "11100000000013338W011"
START_DAY = "2023-01-01"


def _rows_sql(where: str = "TRUE") -> str:
    """One licence per g in 1..:n, the same on both sides (issuer, day, serial, revision by g)."""
    return f"""
        SELECT g,
               '11321203MB' || lpad((g % :issuers)::text, 8, '0') AS issuer,
               (date '{START_DAY}' + ((g::bigint * 7919) % :days)::int)::date AS day,
               '1.2.156.3005.2.{TYPE_CODE}.11321203MB' || lpad((g % :issuers)::text, 8, '0')
                 || '.2023' || lpad(g::text, 10, '0') AS lk,
               1 + (g % 2) AS rev
        FROM generate_series(1, :n) AS g WHERE {where}"""  # noqa: S608  (constants only)


def _status(rev: str) -> str:
    return f"CASE WHEN {rev} = 2 THEN 'suspended' ELSE 'valid' END"


def one_licence(db: Database) -> None:
    """One real licence row for the generated outbox rows to reference."""
    seed(db, 1)  # departments, their users and the type (seed's own licences need a grant, given here)
    with db.transaction() as session:
        if session.execute(sa.select(sa.func.count()).select_from(Licence)).scalar_one():
            return
        lt = session.execute(sa.select(LicenceType)).scalars().first()
        user = session.execute(sa.select(User).where(col(User.department_id).is_not(None))).scalars().first()
        if lt is None or user is None:
            raise SystemExit("benchmark seed made no department user or licence type")
        grants.grant_licence_rights(session, SYSTEM, user_id=id_of(user), type_codes=[lt.code])
        actor, dept_id = Principal.of(user), int(user.department_id or 0)
    result = bulk.run_bulk(db, actor, dept_id, synthetic_licences.synthetic_rows([lt], 1), source="benchmark")
    if not result.inserted:
        raise SystemExit(f"could not issue the reference licence: {result.errors[:1]}")


def build_district(db: Database, n: int, issuers: int, days: int) -> None:
    with db.engine.begin() as conn:
        have = conn.execute(sa.text("SELECT count(*) FROM licence_outbox WHERE operation = 'bench'")
                            ).scalar_one()
        if have == n:
            return
        licence_id = conn.execute(sa.text("SELECT min(id) FROM licence")).scalar_one()
        conn.execute(sa.text("DELETE FROM licence_outbox"))
        started = time.monotonic()
        conn.execute(sa.text(f"""
            INSERT INTO licence_outbox (licence_id, identifier, version, operation, payload,
                                        issuer_code, issue_day, status, attempts, idem_key,
                                        created_at, updated_at, synced_at)
            SELECT :lid, lk || '.001.0', rev, 'bench',
                   json_build_object('certificate_identifier', lk || '.001.0',
                       'certificate_type_code', '{TYPE_CODE}', 'certificate_type_name', '食品经营许可证',
                       'certificate_name', '食品经营许可证',
                       'certificate_number', '2023' || lpad(g::text, 8, '0'),
                       'holder_name', '泰州市高港区某某有限公司', 'holder_code', '91321203MA1XXXXXXX',
                       'holder_code_type', '001', 'issuer_name', '区市场监督管理局', 'issuer_code', issuer,
                       'issue_date', day, 'area_code', '321203', 'valid_from', day,
                       'valid_to', day + 1825, 'status', {_status('rev')}, 'version', rev,
                       'operation', 'issue'),
                   issuer, day, 'sent', 1, lk || '.001.0:' || rev, now(), now(), now()
            FROM ({_rows_sql()}) r"""), {"lid": licence_id, "n": n, "issuers": issuers, "days": days})  # noqa: S608
        print(f"  district: {n} outbox rows in {time.monotonic() - started:.1f}s", flush=True)
    # Rows written by SQL, not by the outbox writers: the baseline they keep is computed once here.
    with db.transaction() as session:
        if session.execute(sa.text("SELECT count(*) FROM licence_recon_latest")).scalar_one() != n:
            started = time.monotonic()
            recon_state.rebuild(session)
            print(f"  district: baseline rebuilt in {time.monotonic() - started:.1f}s", flush=True)
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("licence_outbox", "licence_recon_latest", "licence_recon_day"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def _registry_insert(where: str) -> str:
    return f"""
        INSERT INTO registry_licence (licence_key, identifier, idem_key, version, revision, sequence,
                                      client_id, issuer_code, issue_day, status, record, updated_at)
        SELECT lk, lk || '.001.0', lk || '.001.0:' || rev, 1, rev, g, '321203', issuer,
               to_char(day, 'YYYY-MM-DD'), {_status('rev')},
               json_build_object('certificate_identifier', lk || '.001.0', 'issuer_code', issuer,
                                 'issue_date', day, 'status', {_status('rev')}, 'version', rev)::text,
               '2026-11-30T00:00:00+00:00'
        FROM ({_rows_sql(where)}) r
        ON CONFLICT (licence_key) DO UPDATE SET revision = excluded.revision, status = excluded.status,
            identifier = excluded.identifier"""  # noqa: S608  (constants only)


def build_registry(engine: sa.Engine, n: int, issuers: int, days: int) -> None:
    with engine.begin() as conn:
        if conn.execute(sa.text("SELECT count(*) FROM registry_licence")).scalar_one() == n:
            return
        conn.execute(sa.text("TRUNCATE registry_licence"))
        started = time.monotonic()
        conn.execute(sa.text(_registry_insert("TRUE")), {"n": n, "issuers": issuers, "days": days})
        print(f"  registry: {n} rows in {time.monotonic() - started:.1f}s", flush=True)
    fold(engine)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("registry_licence", registry_sums.TABLE):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))


def fold(engine: sa.Engine) -> None:
    """Fold the registry's day-sum log (the triggers' rows of a build or a damage) as a tree request
    would, so each run starts from one row per day."""
    with engine.begin() as conn:
        registry_sums.fold(conn)


SPREAD = 1_000_003  # a prime: k -> k * SPREAD mod (n/2) visits distinct licences all over the data


def damage(engine: sa.Engine, n: int, fraction: float) -> tuple[dict[str, int], list[int]]:
    """Damage ``fraction`` % of the licences, spread over issuers and days (odd g: revision 2)."""
    count = round(n * fraction / 100)
    if not count:
        return {"deleted": 0, "rolled_back": 0, "extra": 0}, []
    half = n // 2
    picks = [2 * ((k * SPREAD) % half) + 1 for k in range(1, count + 1)]
    deleted, rolled, extra = picks[0::3], picks[1::3], picks[2::3]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM registry_licence WHERE sequence = ANY(:g)"), {"g": deleted})
        conn.execute(sa.text("UPDATE registry_licence SET revision = 1, status = 'valid', "
                             "idem_key = identifier || '\\:1' WHERE sequence = ANY(:g)"), {"g": rolled})
        conn.execute(sa.text(
            "INSERT INTO registry_licence SELECT replace(licence_key, '.2023', '.9999'), "
            "replace(identifier, '.2023', '.9999'), replace(idem_key, '.2023', '.9999'), version, revision, "
            "sequence + 1000000000, client_id, issuer_code, issue_day, status, record, updated_at "
            "FROM registry_licence WHERE sequence = ANY(:g)"), {"g": extra})
    return {"deleted": len(deleted), "rolled_back": len(rolled), "extra": len(extra)}, picks


def undo(engine: sa.Engine, n: int, issuers: int, days: int, picks: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM registry_licence WHERE sequence > 1000000000"))
        conn.execute(sa.text(_registry_insert("g = ANY(:picks)")),
                     {"n": n, "issuers": issuers, "days": days, "picks": picks})


DISTRICT_TABLES = ("licence_outbox", "licence_recon_latest", "licence_recon_day")
REGISTRY_TABLES = ("registry_licence", registry_sums.TABLE)


def rows_read(engine: sa.Engine, tables: tuple[str, ...]) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(sa.text(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
            "WHERE relname = :t"), {"t": t}).scalar_one()) for t in tables}


def run(db: Database, registry_engine: sa.Engine, client: RegistryClient, method: str,
        leaf: int) -> dict[str, Any]:
    time.sleep(11)  # statistics of idle backends are flushed within 10 s (PostgreSQL 15)
    ours, theirs = rows_read(db.engine, DISTRICT_TABLES), rows_read(registry_engine, REGISTRY_TABLES)
    load = os.getloadavg()[0]
    session = db.session()
    try:
        started = time.perf_counter()
        report = reconcile.reconcile(session, client, method="tree" if method == "verify" else method,
                                     leaf=leaf, verify=method == "verify")
        seconds = time.perf_counter() - started
    finally:
        session.rollback()
        session.close()
    time.sleep(11)
    ours_after = rows_read(db.engine, DISTRICT_TABLES)
    theirs_after = rows_read(registry_engine, REGISTRY_TABLES)
    return {
        "method": method,
        "seconds": round(seconds, 2),
        "requests": report.requests,
        "bytes_sent": report.bytes_sent,
        "bytes_received": report.bytes_received,
        "registry_records_listed": report.registry_records_listed,
        "registry_rows_read": {t: theirs_after[t] - theirs[t] for t in REGISTRY_TABLES},
        "district_rows_read": {t: ours_after[t] - ours[t] for t in DISTRICT_TABLES},
        "baseline_drift": report.baseline_drift,
        "found": {"missing": report.missing_in_registry, "behind": report.behind_in_registry,
                  "other": report.other_in_registry, "extra": report.extra_in_registry},
        "requeued": report.requeued,
        "load_1m": round(load, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--damage", default="0,0.1,1", help="percentages, comma-separated")
    parser.add_argument("--issuers", type=int, default=8)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--leaf", type=int, default=reconcile_tree.LEAF)
    parser.add_argument("--methods", default="tree,groups",
                        help="tree, groups, verify (tree after a full check of the district's baseline)")
    parser.add_argument("--registry-database", help="default: the district database's name + _registry")
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_bench_reconcile")
    args = parser.parse_args()
    ensure_database(args.database_url)
    district_url = sa.engine.make_url(args.database_url)
    registry_url = district_url.set(database=args.registry_database or f"{district_url.database}_registry")
    admin = make_engine(registry_url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": registry_url.database}).first():
            conn.execute(sa.text(f'CREATE DATABASE "{registry_url.database}"'))
    admin.dispose()
    registry_db = registry_url.render_as_string(hide_password=False)
    RegistryStore(registry_db).engine.dispose()  # creates the registry's tables
    db = Database(args.database_url)
    one_licence(db)
    build_district(db, args.count, args.issuers, args.days)
    registry_engine = sa.create_engine(registry_db)
    build_registry(registry_engine, args.count, args.issuers, args.days)
    tmp = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    proc, url = start_registry(tmp, registry_db)
    client = RegistryClient(url, KEY, "321203", timeout=600)
    results: dict[str, Any] = {"count": args.count, "issuers": args.issuers, "days": args.days,
                               "leaf": args.leaf, "cpus": os.cpu_count(), "levels": []}
    try:
        for level in [float(x) for x in args.damage.split(",")]:
            done, picks = damage(registry_engine, args.count, level)
            entry: dict[str, Any] = {"damage_percent": level, "damaged": done}
            for method in args.methods.split(","):
                entry[method] = run(db, registry_engine, client, method, args.leaf)
                print(json.dumps({"damage_percent": level, **entry[method]}), flush=True)
            undo(registry_engine, args.count, args.issuers, args.days, picks)
            results["levels"].append(entry)
    finally:
        client.close()
        proc.stop()
        registry_engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
