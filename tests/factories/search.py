"""Factories for the search tests: a small real-name catalogue published through the services.

Imported by the other test_search_* modules (this module itself holds no tests).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlmodel import Session

from catalog import entries as entry_services
from catalog.search import rebuild_index
from core.auth import SYSTEM
from tests.factories.catalog import (
    COMPLETE_FIELDS,
    DISTRICT,
    TOWN,
    make_department,
    make_item,
)

ROOT = Path(__file__).resolve().parents[2]
# Real names from data/service_items_guangan_511602.csv chosen to exercise the engine: shared
# prefixes, 2-character keywords, pinyin, aliases and typo cases.
NAMES = [
    "社会保障卡挂失",
    "社会保障卡启用（激活）",
    "社会保障卡补领、换领、换发",
    "社会保障卡注销",
    "企业职工社会保险费补缴申报",
    "城乡居民基本养老保险待遇申领",
    "城乡居民基本养老保险参保登记",
    "城乡居民基本养老保险注销登记",
    "普通护照签发",
    "居民身份证办理（包括临时）",
    "居民身份证挂失申报、丢失招领",
    "最低生活保障",
    "残疾人证新办",
    "残疾人证换领",
    "困难残疾人生活补贴",
    "失业保险金申领",
    "失业登记",
    "教师资格认定",
    "户口迁移审批",
    "户口登记",
    "个体工商户设立登记",
    "个体工商户注销登记",
    "公司设立登记",
    "食品小经营店备案发放",
    "食品(含保健食品)经营许可核发",
    "烟草专卖零售许可证新办",
    "犬类准养证核发",
    "基本医疗保险关系转移接续",
    "医保电子凭证申领",
    "中国内地公民婚姻登记",
    "补领结婚证",
    "《出生医学证明》首次签发",
    "渔业捕捞许可审批",
    "公共租赁住房申请资格审核认定",
    "创业担保贷款申请",
    "拖拉机/联合收割机驾驶证初次申领",
    "巡游出租汽车经营许可",
    "养蜂证换证",
    "证照遗失补领、换发申请",
    "学前教育、义务教育阶段入学办理",
    "公共场所卫生许可新办审批（县级）",
    "取水许可",
]
# A few entries also published by a town government (so level/division facets have two values).
TOWN_NAMES = ["社会保障卡挂失", "最低生活保障", "残疾人证新办", "失业登记", "户口登记"]


def real_name_count() -> int:
    with (ROOT / "data" / "service_items_guangan_511602.csv").open(encoding="utf-8") as fh:
        names = {row["item_name"] for row in csv.DictReader(fh)}
    return sum(1 for n in NAMES if n in names)


def publish(
    session: Any, dept: Any, item: Any, materials: list[dict[str, Any]] | None = None, **fields: Any
) -> Any:
    entry = entry_services.claim_item(session, SYSTEM, item_id=item.id, department_id=dept.id)
    entry_services.update_entry(
        session, SYSTEM, entry.id, fields={**COMPLETE_FIELDS, **fields}, materials=materials
    )
    entry_services.submit_entry(session, SYSTEM, entry.id)
    return entry_services.approve_entry(session, SYSTEM, entry.id)


def build_catalogue(session: Any) -> dict[str, Any]:
    """Publish NAMES at county level (three departments) and TOWN_NAMES at town level; returns handles."""
    depts = [make_department(session, name) for name in ("区人社局", "区公安分局", "区市场监管局")]
    town = make_department(session, "口岸街道办事处", level="5", division_code=TOWN)
    items = {}
    entries = {}
    for i, name in enumerate(NAMES):
        items[name] = make_item(session, name=name, task_type="20", use_levels="4,5")
        materials = [{"name": "待遇领取资格认证表", "form": "paper", "required": True}] if i == 5 else None
        entries[name] = publish(
            session, depts[i % 3], items[name], materials=materials, keywords="跑腿代办" if i % 7 == 0 else ""
        )
    town_entries = {name: publish(session, town, items[name]) for name in TOWN_NAMES}
    draft_item = make_item(session, name="社会保障卡草稿事项", task_type="20", use_levels="4,5")
    draft = entry_services.claim_item(session, SYSTEM, item_id=draft_item.id, department_id=depts[0].id)
    session.flush()
    return {
        "depts": depts,
        "town": town,
        "entries": entries,
        "town_entries": town_entries,
        "draft": draft,
        "district": DISTRICT,
        "town_code": TOWN,
    }


def rebuild(session: Any) -> int:
    return rebuild_index(session)


@contextmanager
def shared_catalogue(database: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """One catalogue per module, never committed: built in an outer transaction on one connection
    and rolled back at the end; each test then runs in a savepoint of its own (see ``savepoint_session``)."""
    conn = database.engine.connect()
    outer = conn.begin()
    builder = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        handles = build_catalogue(builder)
        builder.flush()  # never commit: pysqlite would turn the outermost RELEASE into a COMMIT
        yield conn, handles
    finally:
        builder.close()
        if outer.is_active:
            outer.rollback()
        conn.close()


@contextmanager
def savepoint_session(conn: Any) -> Iterator[Any]:
    """A session whose commits land in a per-test savepoint that is rolled back afterwards."""
    savepoint = conn.begin_nested()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        if savepoint.is_active:
            savepoint.rollback()
