"""The embedded SQLite and production PostgreSQL give the same answers to the same queries."""

from __future__ import annotations

from typing import Any

import pytest

from catalog import search as engine
from tests.conftest import _bound_database
from tests.factories.search import build_catalogue


@pytest.mark.slow
def test_sqlite_and_postgresql_give_identical_results(sqlite_database: Any, pg_database: Any) -> None:
    queries = [
        "社保",
        "证",
        "登记",
        "huzhao",
        "sbk",
        "最低生活报障",
        "开饭店要办什么证",
        "公安分局",
        "养老 登记",
        "护照",
        "保险",
        "残疾人证",
        "zzz",
        # Closest matches, with a thesaurus synonym that is a generic act word (注册 = 登记).
        "注册个体户",
        "注册微信",
    ]
    answers = []
    for database in (sqlite_database, pg_database):
        for _bound, session in _bound_database(database):
            build_catalogue(session)
            per_db = []
            for q in queries:
                r = engine.search(session, q, page=1, limit=100)
                per_db.append(
                    (
                        q,
                        r.total,
                        [(h.name, h.department, h.division_code, h.score, h.highlights) for h in r.items],
                        {k: [(v["label"], v["count"]) for v in vals] for k, vals in r.facets.items()},
                    )
                )
            answers.append(per_db)
    for on_sqlite, on_postgresql in zip(answers[0], answers[1], strict=True):
        assert on_sqlite[1:3] == on_postgresql[1:3], on_sqlite[0]  # total and items
        assert on_sqlite[3] == on_postgresql[3], on_sqlite[0]  # facets
