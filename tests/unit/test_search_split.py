"""The tuning/held-out split of the relevance set is a fixed rule (issue 14)."""

from __future__ import annotations

import hashlib

from catalog.search.evaluation import HELD_OUT, RELEVANCE_CSV, TUNING, read_relevance, split_of


def test_rows_written_with_the_alias_table_are_always_tuning() -> None:
    assert {split_of("3", q) for q in ("低保", "怎么办理残疾证", "zzzzzz")} == {TUNING}


def test_later_rows_are_split_by_the_hash_of_their_query() -> None:
    for query in ("怎么办理残疾证", "养狗需要证吗", "公积金提取", "狗正怎么办"):
        first = hashlib.sha256(query.encode("utf-8")).digest()[0]
        assert split_of("14", query) == (TUNING if first % 4 == 0 else HELD_OUT)
        assert split_of("14", query) == split_of("14", query)


def test_most_new_queries_are_held_out_and_every_stratum_the_issue_measures_is_in_both() -> None:
    rows = read_relevance(RELEVANCE_CSV)
    new = [r for r in rows if r["batch"] != "3"]
    assert len(new) >= 150
    held = [r for r in new if r["split"] == HELD_OUT]
    assert len(held) * 3 > len(new) * 2
    for split in (TUNING, HELD_OUT):
        strata = {r["stratum"] for r in rows if r["split"] == split}
        assert {"colloquial", "typo", "keyword", "no_answer"} <= strata, split


def test_every_new_row_names_its_source() -> None:
    assert all(r["source"] for r in read_relevance(RELEVANCE_CSV) if r["batch"] != "3")
