"""Reports part of the demo: a past year's history, case statistics, bundles, template tables and
the year-end snapshot, so `make run` shows a meaningful dashboard and a complete annual report.

Idempotent: does nothing when the first demo bundle exists, or when the catalogue demo is absent.

History simulation (demo only): the catalogue demo creates everything "now", so as of the end of
last year nothing would exist yet. On its first run this loader moves the creation and publication
timestamps of the catalogue (items, bodies, entries and their saved versions) into last year, spread
over the months, as if the district had built its catalogue during that year. Licences keep their
real timestamps, so last year's report honestly says that licence figures are missing, while the
current year's dashboard shows them.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from catalog.models import Department, ImplementationEntry
from core.auth import SYSTEM
from core.config import Settings
from core.db import Database
from core.types import CHINA_TZ, utcnow
from reports import bundles, services, snapshot
from reports.models import Bundle

# (name, description, the entries to include in handling order: an item's exact name, else a word of it)
BUNDLES: list[tuple[str, str, list[str]]] = [
    (
        "我要开餐馆",
        "开办餐饮店所需的登记、许可和检查，一次告知、一表申请、一窗受理。",
        [
            "个体工商户设立登记",
            "食品(含保健食品)经营许可核发",
            "公众聚集场所投入使用、营业前消防安全检查",
            "城镇污水排入排水管网许可",
            "设置大型户外广告的审批",
        ],
    ),
    (
        "建设项目开工一件事",
        "社会投资建设项目从用地规划到施工许可的审批一次办。",
        ["建设用地", "建设工程设计方案审定", "建设工程（含临时建设）规划许可", "建筑工程施工许可证核发"],
    ),
    (
        "企业开办一件事",
        "企业设立登记、投资备案和取水许可一次办。",
        ["公司设立登记", "企业投资项目备案", "取水许可证新办审批"],
    ),
    (
        "新生儿出生一件事",
        "出生医学证明、户口登记、医保参保、社保卡申领一次办。",
        ["出生", "户口", "医疗保险", "社会保障卡", "预防接种"],
    ),
    (
        "市场主体退出一件事",
        "个体工商户、合伙企业分支机构注销一次办。",
        ["个体工商户注销登记", "分支机构注销登记", "备案进行注销"],
    ),
]


def demo_year() -> int:
    return utcnow().astimezone(CHINA_TZ).year - 1


def load(db: Database, settings: Settings, year: int | None = None) -> None:
    year = year or demo_year()
    with db.transaction() as session:
        if session.exec(select(Bundle).where(Bundle.name == BUNDLES[0][0])).first() is not None:
            return
        entries = _published_entries(session)
        if not entries:
            return
        simulate_history(session, year)
        import_demo_cases(session, year, entries)
        create_demo_bundles(session, year, entries)
        enter_template_tables(session, year)
        snapshot.create_snapshot(session, SYSTEM, year)


def _published_entries(session: Session) -> list[Any]:
    return list(
        session.execute(
            sa.select(
                col(ImplementationEntry.id),
                col(ImplementationEntry.task_code),
                col(ImplementationEntry.name),
                col(ImplementationEntry.level),
                col(ImplementationEntry.no_contact),
                col(ImplementationEntry.visits),
                col(ImplementationEntry.department_id),
                col(ImplementationEntry.promise_days),
            )
            .where(col(ImplementationEntry.status) == "published", col(ImplementationEntry.applicable))
            .order_by(col(ImplementationEntry.id))
        ).all()
    )


def simulate_history(session: Session, year: int) -> None:
    """Move the catalogue's creation and publication times into ``year`` (see the module docstring)."""
    start = datetime(year, 1, 2, 9, tzinfo=CHINA_TZ)
    session.execute(sa.text("UPDATE catalog_item SET created_at = :t"), {"t": start})
    session.execute(sa.text("UPDATE department SET created_at = :t"), {"t": start})
    ids = [
        i
        for (i,) in session.execute(
            select(ImplementationEntry.id).order_by(col(ImplementationEntry.id))
        ).all()
    ]
    for n, entry_id in enumerate(ids):
        # Claims spread from January to November; versions keep their order, a minute apart.
        day = start + timedelta(days=(n * 37) % 320, hours=n % 7)
        session.execute(
            sa.text(
                "UPDATE implementation_entry SET created_at = :t, "
                "published_at = CASE WHEN published_at IS NULL THEN NULL ELSE :p END "
                "WHERE id = :i"
            ),
            {"t": day, "p": day + timedelta(days=12), "i": entry_id},
        )
        versions = [
            v
            for (v,) in session.execute(
                sa.text("SELECT id FROM entry_version WHERE entry_id = :i ORDER BY id"), {"i": entry_id}
            ).all()
        ]
        for k, version_id in enumerate(versions):
            session.execute(
                sa.text("UPDATE entry_version SET created_at = :t WHERE id = :v"),
                {"t": day + timedelta(days=12 if k else 0, minutes=k), "v": version_id},
            )
    session.flush()


def import_demo_cases(session: Session, year: int, entries: list[Any]) -> None:
    """A year of monthly counts for about two thirds of the district and town entries."""
    rows: list[dict[str, Any]] = []
    for e in entries:
        rng = random.Random(e.id * 7919 + year)  # noqa: S311 (demo data, not security)
        if e.level == "6" or rng.random() < 0.33:
            continue
        base = rng.choice((1, 2, 3, 5, 8, 13, 30, 60)) if e.level == "4" else rng.choice((1, 2, 4))
        # Visits not recorded: the synthetic case mix assumes the middle share, not a recorded fact.
        online_share = 0.9 if e.no_contact else (0.5 if e.visits is None or e.visits <= 1 else 0.1)
        for month in range(1, 13):
            received = max(0, int(rng.gauss(base, base / 3)))
            online = min(received, int(received * online_share + rng.random()))
            finished = received if month < 12 else int(received * 0.9)
            on_time = finished - (1 if finished and rng.random() < 0.05 else 0)
            rows.append(
                {
                    "task_code": e.task_code,
                    "month": f"{year}-{month:02d}",
                    "received": received,
                    "online": online,
                    "finished": finished,
                    "on_time": on_time,
                }
            )
    if rows:
        services.import_case_stats(session, SYSTEM, year=year, rows=rows, source="demo")


def create_demo_bundles(session: Session, year: int, entries: list[Any]) -> None:
    # Entries with complete elements (time limits, materials) first, so the bundle pages have substance.
    district = sorted((e for e in entries if e.level == "4"), key=lambda e: (e.promise_days is None, e.id))
    for n, (name, description, keywords) in enumerate(BUNDLES):
        opening = bundles.is_opening_bundle(name, description)
        chosen: list[int] = []
        for word in keywords:
            # The exact name first: a word alone also matches the item's 延续/变更/注销 siblings, which
            # an opening bundle must not hold (the bundle check would warn).
            match = next((e.id for e in district if word == e.name and e.id not in chosen), None)
            if match is None:
                match = next(
                    (
                        e.id
                        for e in district
                        if word in e.name
                        and e.id not in chosen
                        and not (opening and bundles.non_opening_act(e.name))
                    ),
                    None,
                )
            if match is not None:
                chosen.append(match)
        if len(chosen) < 2:
            continue
        bundle = bundles.save_bundle(
            session, SYSTEM, name=name, description=description, entry_ids=chosen, published=True
        )
        bundle.published_at = datetime(year, 3 + 2 * n, 15, tzinfo=CHINA_TZ)
    session.flush()


def enter_template_tables(session: Session, year: int) -> None:
    t2 = {
        "20.1|made": 0,
        "20.1|repealed": 0,
        "20.1|current": 0,
        "20.1n|made": 6,
        "20.1n|repealed": 2,
        "20.1n|current": 31,
        "20.5|decisions": 0,
        "20.6a|decisions": 0,
        "20.6b|decisions": 0,
        "20.8|amount": "0",
    }
    dept_count = session.execute(select(sa.func.count()).select_from(Department)).scalar_one()
    # Figures with no source in the platform (government information requests), typed in by staff.
    t2["20.5|decisions"] = 5200 + 3 * int(dept_count)
    t2["20.6a|decisions"] = 812
    t2["20.6b|decisions"] = 37
    t2["20.8|amount"] = "126.4500"
    t3: dict[str, int] = {}
    cols = ("natural", "commercial", "research", "welfare", "legal", "other")
    new = (41, 6, 0, 1, 2, 0)
    carried = (3, 0, 0, 0, 0, 0)
    results = {
        "3.1": (20, 3, 0, 1, 1, 0),
        "3.2": (4, 1, 0, 0, 0, 0),
        "3.3.4": (2, 0, 0, 0, 0, 0),
        "3.4.1": (12, 1, 0, 0, 1, 0),
        "3.5.2": (2, 0, 0, 0, 0, 0),
        "3.6.1": (1, 0, 0, 0, 0, 0),
    }
    for i, column in enumerate(cols):
        t3[f"1|{column}"] = new[i]
        t3[f"2|{column}"] = carried[i]
        for row, values in results.items():
            t3[f"{row}|{column}"] = values[i]
        done = sum(values[i] for values in results.values())
        t3[f"4|{column}"] = new[i] + carried[i] - done
    t4 = {
        f"{g}|{c}": v
        for g, vals in (("review", (2, 1, 0, 0)), ("direct", (1, 0, 0, 1)), ("after", (0, 0, 0, 0)))
        for c, v in zip(("upheld", "corrected", "other", "pending"), vals, strict=True)
    }
    for table, figures in (("2", t2), ("3", t3), ("4", t4)):
        services.save_template_table(session, SYSTEM, year=year, table=table, values=figures)
