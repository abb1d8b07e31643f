"""Synthetic catalogues for search scale tests, from the real 泰州 divisions and the real item names.

Shape (per ``size``):

* county bodies (the 34 real departments of the item file) implement every one of the 1,135 items;
* each town/street government implements ``TOWN_ITEMS`` items (公共服务 first, then 其他行政权力 ...);
* each village/community committee implements ``VILLAGE_ITEMS`` 公共服务 items.

``district`` is 高港区 only (about 14.5k entries), ``city`` all of 泰州市 (about 145k) and
``province`` seven copies of 泰州市 under synthetic city codes (about 1M): Jiangsu's other cities'
villages are not in the shipped data, so their codes are made up and their names are 泰州's. Names
are identical across divisions, as 三级四同 requires of real catalogues.

Rows are bulk-inserted (COPY on PostgreSQL) because services would take hours at 1M; the entries
are published directly and carry no materials. Everything is marked by catalogue items whose
``source_code`` starts with ``synth:``, and a new run replaces the previous synthetic catalogue.

Benchmark data only: the rows bypass the catalogue services (no audit row, no workflow), so
``generate`` refuses a database that holds real (non-synthetic) entries unless forced. Run it as
``python -m benchmarks.search_synth --size district`` against ``DATABASE_URL``; the product has no
command that writes it.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from sqlmodel import Session, col

from catalog.codes import make_uscc
from catalog.models import CatalogItem, Department, Division, EntryStatus, ImplementationEntry
from catalog.search import _copy_rows, _rebuild_cells, rebuild_index
from catalog.search.state import mark_changed
from catalog.search_models import SearchEntry, SearchPosting
from core.config import PROJECT_ROOT, Settings
from core.db import Database, table_of
from core.types import utcnow

DATA = PROJECT_ROOT / "data"
ITEMS_CSV = DATA / "service_items_guangan_511602.csv"
TOWN_ITEMS = 230
VILLAGE_ITEMS = 65
SIZES = {"real": 1, "district": 1, "city": 1, "province": 7}  # real: county level only (1,135)
TYPE_PRIORITY = {"20": 0, "10": 1, "07": 2, "05": 3, "01": 4}
SYNTH_PREFIX = "synth:"


@dataclass(frozen=True)
class RealItem:
    seq: int
    name: str
    task_type: str
    department: str


def read_items(path: Path = ITEMS_CSV) -> list[RealItem]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [
            RealItem(
                int(r["seq"]),
                r["item_name"].strip(),
                f"{int(r['task_type_code']):02d}",
                r["department"].strip(),
            )
            for r in csv.DictReader(fh)
            if r["item_name"].strip()
        ]


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def division_plan(size: str) -> list[tuple[str, str, str, str | None, str]]:
    """(code, name, kind, parent, level) for every division of the size, parents first."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}")
    if size in ("district", "real"):
        counties = [r for r in _read(DATA / "divisions_3212_taizhou_counties.csv") if r["code6"] == "321203"]
    else:
        counties = _read(DATA / "divisions_3212_taizhou_counties.csv")
    county_codes = {r["code12"] for r in counties}
    towns = [
        r
        for r in _read(DATA / "divisions_3212_taizhou_towns.csv")
        if r["county_code"] + "000000" in county_codes
    ]
    town_codes = {r["code12"] for r in towns}
    villages = [
        r for r in _read(DATA / "divisions_3212_taizhou_villages.csv") if r["town_code12"] in town_codes
    ]
    out: list[tuple[str, str, str, str | None, str]] = []
    for copy in range(SIZES[size]):
        city = "12" if copy == 0 else f"{50 + copy:02d}"  # 3212 is real; 3251.. are synthetic city codes

        def recode(code: str, city: str = city) -> str:
            return code[:2] + city + code[4:]

        out.append(("320000000000", "江苏省", "", None, "province"))
        out.append(
            (recode("321200000000"), "泰州市" if copy == 0 else f"合成市{copy}", "", "320000000000", "city")
        )
        for r in counties:
            out.append((recode(r["code12"]), r["name"], "", recode("321200000000"), "county"))
        for r in towns:
            out.append(
                (recode(r["code12"]), r["name"], r["town_type"], recode(r["county_code"] + "000000"), "town")
            )
        for r in villages:
            out.append(
                (recode(r["code12"]), r["name"], r["village_type"], recode(r["town_code12"]), "village")
            )
    seen: set[str] = set()
    unique = []
    for row in out:
        if row[0] not in seen:
            seen.add(row[0])
            unique.append(row)
    return unique


def _insert(conn: sa.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, rows)
    else:
        meta_table = sa.table(table, *[sa.column(c) for c in rows[0]])
        for i in range(0, len(rows), 20000):
            conn.execute(sa.insert(meta_table), rows[i : i + 20000])


def clear_synthetic(session: Session) -> int:
    """Remove a previous synthetic catalogue (entries, their search rows, items, departments)."""
    mark_changed(session)  # search-result caches must not outlive these rows
    conn = session.connection()
    item = table_of(CatalogItem)
    ent = table_of(ImplementationEntry)
    dep = table_of(Department)
    synth_items = sa.select(item.c.id).where(item.c.source_code.like(SYNTH_PREFIX + "%"))
    synth_entries = sa.select(ent.c.id).where(ent.c.item_id.in_(synth_items))
    conn.execute(sa.delete(table_of(SearchPosting)).where(col(SearchPosting.entry_id).in_(synth_entries)))
    conn.execute(sa.delete(table_of(SearchEntry)).where(col(SearchEntry.entry_id).in_(synth_entries)))
    n = conn.execute(sa.delete(ent).where(ent.c.item_id.in_(synth_items))).rowcount
    conn.execute(sa.delete(item).where(item.c.source_code.like(SYNTH_PREFIX + "%")))
    conn.execute(sa.delete(dep).where(dep.c.uscc.like("11%"), dep.c.name.like("%（合成）")))
    _rebuild_cells(conn)
    return int(n or 0)


class RealCatalogueError(Exception):
    """The database holds real entries; synthetic ones would mix with them unaudited."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"数据库中已有 {count} 条非合成的实施清单：合成目录只用于压测，"
            "会与真实数据混在一起且不留审计记录。请换一个空数据库；确需写入时加 --force。"
        )
        self.count = count


def real_entry_count(session: Session) -> int:
    """Entries whose basic item is not one of ours (``source_code`` not starting with ``synth:``)."""
    item = table_of(CatalogItem)
    ent = table_of(ImplementationEntry)
    synthetic = sa.select(item.c.id).where(item.c.source_code.like(SYNTH_PREFIX + "%"))
    query = sa.select(sa.func.count()).select_from(ent).where(ent.c.item_id.not_in(synthetic))
    return int(session.connection().execute(query).scalar_one())


def generate(
    session: Session,
    size: str,
    progress: Callable[[int], object] | None = None,
    limit: int | None = None,
    *,
    force: bool = False,
) -> int:
    """Write a synthetic published catalogue of ``size`` (at most ``limit`` entries); returns the count.

    Raises RealCatalogueError, writing nothing, when the database holds real entries and ``force``
    is not set.
    """
    if not force:
        real = real_entry_count(session)
        if real:
            raise RealCatalogueError(real)
    conn = session.connection()
    clear_synthetic(session)
    now = utcnow()
    plan = division_plan(size)
    div = table_of(Division)
    existing = {r[0] for r in conn.execute(sa.select(div.c.code))}
    _insert(
        conn,
        "division",
        [
            {"code": c, "name": n, "level": lv, "kind": k or None, "parent_code": p}
            for c, n, k, p, lv in plan
            if c not in existing
        ],
    )

    items = read_items()
    item_tbl = table_of(CatalogItem)
    item_rows = [
        {
            "code": f"99{it.task_type}{it.seq:08d}",
            "source_code": f"{SYNTH_PREFIX}{it.seq}",
            "name": it.name[:200],
            "task_type": it.task_type,
            "legal_basis": "",
            "use_levels": "4,5,6",
            "county_only": False,
            "created_at": now,
            "updated_at": now,
        }
        for it in items
    ]
    _insert(conn, "catalog_item", item_rows)
    item_ids: dict[str, int] = dict(
        conn.execute(
            sa.select(item_tbl.c.source_code, item_tbl.c.id).where(
                item_tbl.c.source_code.like(SYNTH_PREFIX + "%")
            )
        ).all()
    )
    by_priority = sorted(items, key=lambda it: (TYPE_PRIORITY.get(it.task_type, 9), it.seq))
    town_items = by_priority[:TOWN_ITEMS]
    village_items = [it for it in items if it.task_type == "20"][:VILLAGE_ITEMS]
    dept_names = sorted({it.department for it in items})

    dep = table_of(Department)
    dept_rows: list[dict[str, Any]] = []
    serial = 0

    def new_dept(name: str, level: str, division: str) -> dict[str, Any]:
        nonlocal serial
        serial += 1
        org8 = f"Y{serial:07d}"
        row = {
            "name": f"{name}（合成）"[:100],
            "uscc": make_uscc("11" + division[:6], org8),
            "uscc_warning": None,
            "level": level,
            "division_code": division,
            "created_at": now,
        }
        dept_rows.append(row)
        return row

    plan_depts: list[tuple[dict[str, Any], list[RealItem], str]] = []
    for code, name, kind, _parent, lv in plan:
        if size == "real" and lv != "county":
            continue
        if lv == "county":
            for dname in dept_names:
                d = new_dept(f"{name}{dname.removeprefix('区')}", "4", code)
                plan_depts.append((d, [it for it in items if it.department == dname], code))
        elif lv == "town":
            d = new_dept(f"{name}{'办事处' if kind == '街道' else '人民政府'}", "5", code)
            plan_depts.append((d, town_items, code))
        elif lv == "village":
            d = new_dept(f"{name}{'居民委员会' if kind.startswith('居') else '村民委员会'}", "6", code)
            plan_depts.append((d, village_items, code))
    _insert(conn, "department", dept_rows)
    dept_ids: dict[str, int] = dict(
        conn.execute(sa.select(dep.c.uscc, dep.c.id).where(dep.c.name.like("%（合成）"))).all()
    )

    written = 0
    batch: list[dict[str, Any]] = []
    remaining = limit if limit is not None else 10**9
    for d, its, division in plan_depts:
        for it in its[: max(0, remaining - written - len(batch))]:
            code = f"99{it.task_type}{it.seq:08d}"
            task_code = f"{d['uscc']}{d['level']}{code}"
            digest = hashlib.blake2b(task_code.encode(), digest_size=2).digest()[0]
            batch.append(
                {
                    "task_code": task_code,
                    "item_id": item_ids[f"{SYNTH_PREFIX}{it.seq}"],
                    "department_id": dept_ids[d["uscc"]],
                    "level": d["level"],
                    "division_code": division,
                    "name": it.name[:200],
                    "task_type": it.task_type,
                    "legal_basis": "",
                    "catalog_code": code,
                    "applicable": True,
                    "not_applicable_reason": None,
                    "status": EntryStatus.PUBLISHED.value,
                    "version": 1,
                    "accept_conditions": "",
                    "anticipate_days": 20,
                    "anticipate_unit": "working",
                    "promise_days": 5,
                    "promise_unit": "working",
                    "project_type": "2",
                    "visits": 0 if digest < 80 else 1,
                    "visits_reason": None if digest < 80 else "需核验原件",
                    "online_depth": "1,2,3,4,5,6" if digest < 80 else "1,2",
                    "online_url": None,
                    "result_delivery": "online" if digest < 80 else "window",
                    "window_address": None,
                    "opening_hours": None,
                    "phone": None,
                    "keywords": "",
                    "no_contact": digest < 80,
                    "created_at": now,
                    "updated_at": now,
                    "published_at": now,
                }
            )
            if len(batch) >= 20000:
                _insert(conn, "implementation_entry", batch)
                written += len(batch)
                if progress:
                    progress(len(batch))
                batch = []
    _insert(conn, "implementation_entry", batch)
    written += len(batch)
    if progress:
        progress(len(batch))
    return written


def expected_size(size: str) -> int:
    plan = division_plan(size)
    n_items = len(read_items())
    if size == "real":
        return n_items
    return sum(
        n_items if lv == "county" else TOWN_ITEMS if lv == "town" else VILLAGE_ITEMS if lv == "village" else 0
        for _c, _n, _k, _p, lv in plan
    )


@click.command(
    help="生成合成的已发布目录（真实区划与事项名称），仅供搜索压测；写入 DATABASE_URL 指向的数据库。"
)
@click.option("--size", type=click.Choice(["district", "city", "province"]), required=True)
@click.option(
    "--limit",
    type=click.IntRange(1, 5_000_000),
    default=None,
    help="生成这么多条后停止（如城市目录的 50000 条）",
)
@click.option("--no-index", is_flag=True, help="生成后不重建搜索索引")
@click.option("--force", is_flag=True, help="数据库中已有真实实施清单时仍然写入")
def main(size: str, limit: int | None, no_index: bool, force: bool) -> None:
    from tqdm import tqdm

    settings = Settings.from_env()
    db = Database(settings.database_url)
    total = min(expected_size(size), limit or 10**9)
    if not force:
        with db.transaction() as session:
            real = real_entry_count(session)
        if real:  # said before the progress bar starts; generate() checks again in its transaction
            raise click.ClickException(str(RealCatalogueError(real)))
    try:
        with db.transaction() as session, tqdm(total=total, desc=f"生成 {size}", unit="条") as bar:
            n = generate(session, size, progress=bar.update, limit=limit, force=force)
    except RealCatalogueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"已生成 {n} 条合成事项（{size}）")
    if not no_index:
        with db.transaction() as session:
            start = time.perf_counter()
            indexed = rebuild_index(session, progress=True)
        click.echo(f"已索引 {indexed} 条，用时 {time.perf_counter() - start:.1f} 秒")
    db.engine.dispose()


if __name__ == "__main__":
    main()
