"""Queries the alias table was not tuned on (issue 14): words typed together that a name holds
apart, closest matches instead of nothing, homophone typos. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlmodel import Session

from catalog import search as engine
from tests.factories.catalog import make_department, make_item
from tests.factories.search import publish, savepoint_session

# Real names from data/service_items_guangan_511602.csv around the examples, with the
# neighbours that used to win (经营潜水许可, 更新采伐护路林审批).
NAMES = [
    "公章刻制业特种行业许可证核发",
    "城镇污水排入排水管网许可",
    "城镇排水与污水处理设施竣工验收备案",
    "经营潜水许可",
    "夜间建筑施工许可",
    "林木采伐许可证核发（县级权限）",
    "更新采伐护路林审批",
    "紧急情况林木采伐备案(县级)",
    "取水许可证新办审批",
    "最低生活保障",
    "犬类准养证核发",
    "拖拉机/联合收割机驾驶证初次申领",
]


@contextmanager
def _catalogue(database: Any) -> Iterator[Any]:
    conn = database.engine.connect()
    outer = conn.begin()
    builder = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        dept = make_department(builder, "区行政审批局")
        for name in NAMES:
            publish(builder, dept, make_item(builder, name=name, task_type="01"))
        builder.flush()
        yield conn
    finally:
        builder.close()
        if outer.is_active:
            outer.rollback()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def catalogue(request: pytest.FixtureRequest) -> Iterator[Any]:
    database = request.getfixturevalue("sqlite_database" if request.param == "sqlite" else "pg_database")
    with _catalogue(database) as conn:
        yield conn


@pytest.fixture
def session(catalogue: Any) -> Iterator[Any]:
    with savepoint_session(catalogue) as s:
        yield s


def names(session: Any, q: str) -> list[str]:
    return [h.name for h in engine.search(session, q, limit=20).items]


def test_words_typed_together_match_apart_in_a_name(session: Any) -> None:
    assert names(session, "公章刻制许可") == ["公章刻制业特种行业许可证核发"]


def test_all_words_apart_rank_above_a_one_typo_match(session: Any) -> None:
    found = names(session, "排水许可")
    assert found[0] == "城镇污水排入排水管网许可"
    assert "经营潜水许可" not in found[:1]


def test_words_apart_rank_below_a_contiguous_match(session: Any) -> None:
    result = engine.search(session, "采伐许可")
    # 林木采伐许可证核发 holds 采伐许可 as typed; nothing holding the words apart may outrank it.
    assert result.items[0].name == "林木采伐许可证核发（县级权限）"
    contiguous = result.items[0].score
    apart = engine.search(session, "公章刻制许可").items[0].score
    assert apart < contiguous


def test_segmented_words_are_highlighted_apart(session: Any) -> None:
    hit = engine.search(session, "公章刻制许可").items[0]
    marked = "".join(text for text, on in hit.name_segments() if on)
    assert marked == "公章刻制许可"


def test_a_query_about_nothing_in_the_catalogue_still_finds_nothing(session: Any) -> None:
    for q in ("火星移民申请", "宇宙飞船年检", "恐龙饲养证", "比特币挖矿许可"):
        assert engine.search(session, q).total == 0, q
