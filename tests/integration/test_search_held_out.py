"""The held-out half of data/search_relevance.csv (issue 14) as a regression guard, on PostgreSQL.

The floors are what the engine achieved when the held-out queries were first run (rounded down; see
docs/search.md), not the issue's targets: the targets are reported beside them by
`flask search evaluate`, and the report says which are missed. Raise a floor when the engine
improves; never lower one to let a change through.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session

from catalog.divisions import GAOGANG_FILES, load_divisions_csv
from catalog.importer import import_items_csv, read_department_map, read_uscc_map
from catalog.search import search
from catalog.search.evaluation import (
    HELD_OUT,
    RELEVANCE_CSV,
    TARGETS,
    evaluate,
    headline,
    read_relevance,
)
from catalog.search_api import EVALUATION_DEPARTMENT_MAP, EVALUATION_USCC_MAP, REAL_ITEMS_CSV

# Held-out half, aliases on, measured 2026-11-30 on the 1,135 real items (docs/search.md); raised
# after the thesaurus and closest-match changes of issue 14 item 4 (0.547, 0.795, 1.000, 0.688, 15.1 %)
# and again after abbreviations, co-occurring words and the character last resort (0.650, 0.801,
# 1.000, 0.688, 7.9 %; branch searchq, 2026-12-01), and after subject words, 证 heads, two-character
# typos, half a question of known words and head words (0.709, 0.914, 1.000, 0.688, 5.6 %; branch
# searchq2, 2026-12-01), and after closest matches stopped counting a generic act word reached only
# through a synonym (0.709, 0.955, 1.000, 0.688, 5.6 %; branch searchgate, 2026-12-01), and after
# the acts everyday verbs ask for (0.717, 0.955, 1.000, 0.688, 5.6 %; branch searchq3, 2026-12-02).
# Batch 15 (110 more held-out rows, 2026-12-02, session 10) made the half harder: the session's starting
# engine scored 0.639, 0.739, 1.000, 0.600, 13.5 % on it when the rows were first run; the floors are
# the figures after that session's aliases from the tuning half (0.648, 0.765, 1.000, 0.600, 12.6 %),
# raised after the lost-licence acts and aliases heard through a slip (0.653, 0.782, 1.000, 0.600, 11.7 %)
# and words a slip broke inside a question (0.653, 0.799, 1.000, 0.600, 11.3 %), and three more aliases
# from batch 15's tuning rows (0.653, 0.825, 1.000, 0.600, 10.8 %).
# Batch 16 (130 more held-out rows, session 11) made it harder again: the session's starting engine scored
# 0.622, 0.744, 1.000, 0.633, 14.1 % on the enlarged half; the floors are the figures after that session's
# aliases from batch 16's tuning rows and the run-typed-right rule (0.634, 0.764, 1.000, 0.633, 13.5 %).
FLOORS = {
    "colloquial_mrr": 0.63,
    "typo_mrr": 0.76,
    "keyword_recall": 1.00,
    "no_answer_precision": 0.63,
}
# Lower is better for this one: a ceiling.
ZERO_RATE_CEILING = 0.14


@pytest.fixture(scope="module")
def real_catalogue(pg_database: Any) -> Iterator[Session]:
    """The real catalogue imported for 高港区 inside a transaction that is rolled back afterwards."""
    conn = pg_database.engine.connect()
    outer = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        load_divisions_csv(session, *GAOGANG_FILES)
        report = import_items_csv(
            session,
            REAL_ITEMS_CSV,
            "321203",
            progress=False,
            department_usccs=read_uscc_map(EVALUATION_USCC_MAP),
            department_names=read_department_map(EVALUATION_DEPARTMENT_MAP),
        )
        assert not report.errors, report.errors[:3]
        session.flush()
        yield session
    finally:
        session.close()
        outer.rollback()
        conn.close()


def test_held_out_half_keeps_the_figures_it_had_when_it_was_written(real_catalogue: Session) -> None:
    queries = [q for q in read_relevance(RELEVANCE_CSV) if q["split"] == HELD_OUT]
    strata = {q["stratum"] for q in queries}
    assert {"colloquial", "typo", "keyword", "no_answer"} <= strata
    figures = headline(evaluate(real_catalogue, queries))
    below = {k: (figures[k], floor) for k, floor in FLOORS.items() if (figures[k] or 0.0) < floor}
    assert not below, f"held-out figures fell below their floors (value, floor): {below}"
    zero_rate = figures["zero_rate"]
    assert zero_rate is not None
    assert zero_rate <= ZERO_RATE_CEILING
    # Every figure the issue sets a target for is guarded here.
    assert {t.key for t in TARGETS} == set(FLOORS) | {"zero_rate"}


def test_aliases_can_be_switched_off_for_the_evaluation(real_catalogue: Session) -> None:
    # 驾照 reaches 驾驶证 only through its alias (data/search_aliases.csv, seeded by the migration):
    # 照 is not 证, so neither the abbreviation rule nor a homophone finds it. (低保, once used here, is
    # now found without its alias, as an abbreviation of 最低生活保障.)
    with_aliases = search(real_catalogue, "驾照")
    assert with_aliases.items
    assert all("驾驶证" in h.name for h in with_aliases.items)
    without = search(real_catalogue, "驾照", use_aliases=False)
    assert not [h.name for h in without.items if "驾驶证" in h.name]
