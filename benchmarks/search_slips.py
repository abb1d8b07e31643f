"""How the search holds up when a citizen's question carries one pinyin-IME slip: a development measure
made from the TUNING half only (issue 14: the held-out half is for measuring, never for writing rules).

Each colloquial query of the tuning half of data/search_relevance.csv gets one slip on the longest of its
meaningful words (its second character, or its only one): the most frequent single character of the
segmenter's dictionary with the same toneless syllable. The slipped queries are not labels and are not
committed anywhere; the relevant items are the original row's. Runs on the real catalogue in a temporary
SQLite, as `flask search evaluate` does, and prints MRR@10 as typed and with the slip, aliases on and
off, then the slipped queries that lost their answer.

``--time`` instead times every labelled query (both halves, aliases on) twice in process on the same
catalogue: mean, p50, p95 and p99 per search, to compare the cost of engine changes.

Usage: .venv/bin/python -m benchmarks.search_slips [--time]   (CITY_REGISTRY_KEY must be set, any value)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pypinyin import Style, lazy_pinyin  # noqa: E402

from catalog.search.evaluation import RELEVANCE_CSV, TUNING, headline, read_relevance  # noqa: E402
from catalog.search.text import _segmenter, meaningful_words  # noqa: E402

# Characters rarer than this in the dictionary are not what an IME offers first.
MIN_CHARACTER_FREQUENCY = 50


def _commonest_by_syllable() -> dict[str, list[str]]:
    out: dict[str, list[tuple[int, str]]] = {}
    for word, freq in _segmenter().FREQ.items():
        if len(word) == 1 and "\u4e00" <= word <= "\u9fff" and freq > MIN_CHARACTER_FREQUENCY:
            out.setdefault(lazy_pinyin(word, style=Style.NORMAL)[0], []).append((freq, word))
    return {syl: [w for _f, w in sorted(chars, reverse=True)] for syl, chars in out.items()}


def slipped(query: str, by_syllable: dict[str, list[str]]) -> str | None:
    """The query with one slip on its longest meaningful word, or None when none can be made."""
    words = meaningful_words(query)
    if not words:
        return None
    word = max(words, key=len)
    at = query.find(word) + (1 if len(word) > 1 else 0)
    typed = query[at]
    others = [c for c in by_syllable.get(lazy_pinyin(typed, style=Style.NORMAL)[0], []) if c != typed]
    return query[:at] + others[0] + query[at + 1 :] if others else None


def _time_labelled_queries() -> None:
    import statistics
    import time

    from catalog.search import search
    from catalog.search_api import real_catalogue_session

    queries = [q["query"] for q in read_relevance(RELEVANCE_CSV)]
    with real_catalogue_session() as session:
        for q in queries:  # warm-up: dictionaries, thesaurus, statement caches
            search(session, q, limit=10)
        spent = []
        for _round in range(2):
            for q in queries:
                start = time.perf_counter()
                search(session, q, limit=10)
                spent.append(1000 * (time.perf_counter() - start))
    spent.sort()
    print(
        f"{len(spent)} searches: mean {statistics.mean(spent):.2f} ms, p50 {spent[len(spent) // 2]:.2f}, "
        f"p95 {spent[int(len(spent) * 0.95)]:.2f}, p99 {spent[int(len(spent) * 0.99)]:.2f}"
    )


def main() -> None:
    from catalog.search_api import evaluate_on_real_catalogue

    if "--time" in sys.argv[1:]:
        _time_labelled_queries()
        return

    by_syllable = _commonest_by_syllable()
    rows: list[dict[str, Any]] = []
    for q in read_relevance(RELEVANCE_CSV):
        if q["split"] != TUNING or q["stratum"] != "colloquial":
            continue
        slip = slipped(q["query"], by_syllable)
        if slip is None:
            continue
        rows.append(q)
        rows.append({**q, "query": slip, "stratum": "typo"})
    report = evaluate_on_real_catalogue(rows)
    for aliases in ("on", "off"):
        figures = headline(report["runs"][f"{TUNING}:{aliases}"])
        print(
            f"aliases {aliases}: {len(rows) // 2} tuning colloquial queries, MRR@10 as typed "
            f"{figures['colloquial_mrr']:.3f}, with one slip {figures['typo_mrr']:.3f}"
        )
    lost = [f for f in report["runs"][f"{TUNING}:on"]["failures"] if f.startswith("typo: ")]
    print("slipped queries with no relevant result in the top 10 (aliases on):", "; ".join(lost) or "none")


if __name__ == "__main__":
    main()
