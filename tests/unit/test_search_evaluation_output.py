"""`flask search evaluate` names the failing queries of the tuning half only: whoever tunes the engine
reads that output, and the held-out half must stay unseen (catalog.search.evaluation)."""

from __future__ import annotations

from typing import Any

from catalog.search.evaluation import format_report


def _run(failures: list[str]) -> dict[str, Any]:
    strata = {"colloquial": {"recall": [0.0], "mrr": [0.0], "ndcg": [0.0], "empty": [], "distinct": [],
                             "shown": []}}
    return {"strata": strata, "answerable": 1, "zero": 1, "failures": failures}


def test_failing_queries_are_listed_for_the_tuning_half_and_only_counted_for_the_held_out_half() -> None:
    runs = {
        "tuning:on": _run(["colloquial: 调参查询甲"]),
        "held_out:on": _run(["colloquial: 留出查询乙", "colloquial: 留出查询丙"]),
        "tuning:off": _run(["colloquial: 调参查询甲"]),
        "held_out:off": _run(["colloquial: 留出查询乙"]),
    }
    totals = {"answerable": 2, "zero": 2}
    text = format_report({"runs": runs, "all": totals, "n": {"tuning": 1, "held_out": 2}})
    assert "调参查询甲" in text
    assert "留出查询" not in text
    assert "2 queries, not listed (held-out half)" in text
    assert "1 queries, not listed (held-out half)" in text
