"""Citizen search over published implementation entries, identical on SQLite and PostgreSQL.

How it works (see docs/search.md):

* Every distinct text (entry name, keyword, department name, material name) is a ``SearchTerm``
  indexed by its character unigrams and overlapping bigrams, and by letter bigrams of its pinyin
  (``#``-prefixed). A query phrase of n >= 2 characters selects the terms holding all its bigrams,
  then keeps those that really contain it, so a query finds every name that contains it (the
  ``LIKE '%q%'`` oracle), including 1- and 2-character queries.
* Everything that decides the answer (matching, scoring, ordering, facets) runs in Python over rows
  the database returns for plain equality/IN queries, so both databases give the same answer.
* Aliases (data/search_aliases.csv, editable by administrators), pinyin (full, aligned on syllables,
  and initials), filler words (办/怎么/需要什么材料 ...) and, when nothing else matched, one wrong,
  missing or extra character widen the query.
* Ranking: exact name > name prefix > name contains > all words in the name > alias/pinyin
  variants of those > a word as an abbreviation of the name's (医保 in 医疗保险) > homophone
  correction > one-typo match > closest matches (part of a question) > most of its characters;
  then entries found through a keyword > department > material. Names about a follow-up act (注销,
  变更, 补领 ...) rank a point below when the query names none; ties by shorter name, then the name,
  then the entry id.

The package, by seam: ``text`` (normalisation, grams, pinyin), ``aliases``, ``index`` (the tables
and the ``reindex_entry`` the services call), ``facet_keys``, ``filters`` and ``facets``, ``query``
(matching, ranking, paging), ``misses`` (zero-result log) and ``evaluation``. The names below stay
importable from ``catalog.search`` for existing callers (and the migration that reads the alias table).
"""

from __future__ import annotations

from catalog.search.aliases import (
    ALIASES_CSV,
    Alias,
    active_aliases,
    clean_targets,
    delete_alias,
    load_aliases,
    read_aliases_csv,
    save_alias,
)
from catalog.search.evaluation import like_oracle
from catalog.search.facet_keys import facet_division
from catalog.search.filters import SearchFilters, division_prefix, validate_filters
from catalog.search.index import (
    TermCache,
    _copy_rows,
    _rebuild_cells,
    entry_texts,
    is_searchable,
    rebuild_index,
    reindex_entries,
    reindex_entry,
)
from catalog.search.misses import log_zero_result, top_misses
from catalog.search.query import (
    ALL_WORDS,
    CONTAINS,
    EXACT,
    FIELD_LABELS,
    FIELD_SCORES,
    FUZZY,
    MAX_LIMIT,
    MAX_PAGE,
    MAX_WORDS,
    PREFIX,
    VARIANT_PENALTY,
    Hit,
    SearchResult,
    browse,
    pinyin_match,
    search,
)
from catalog.search.state import index_version, mark_changed
from catalog.search.text import (
    FILLERS,
    MAX_QUERY_CHARS,
    grams,
    has_cjk,
    normalize_query,
    normalize_text,
    pinyin_grams,
    pinyin_of,
    query_grams,
    strip_fillers,
    syllables,
    within_one_edit,
)

__all__ = [
    "ALIASES_CSV",
    "ALL_WORDS",
    "CONTAINS",
    "EXACT",
    "FIELD_LABELS",
    "FIELD_SCORES",
    "FILLERS",
    "FUZZY",
    "MAX_LIMIT",
    "MAX_PAGE",
    "MAX_QUERY_CHARS",
    "MAX_WORDS",
    "PREFIX",
    "VARIANT_PENALTY",
    "Alias",
    "Hit",
    "SearchFilters",
    "SearchResult",
    "TermCache",
    "_copy_rows",
    "_rebuild_cells",
    "active_aliases",
    "browse",
    "clean_targets",
    "delete_alias",
    "division_prefix",
    "entry_texts",
    "facet_division",
    "grams",
    "has_cjk",
    "index_version",
    "is_searchable",
    "like_oracle",
    "load_aliases",
    "log_zero_result",
    "mark_changed",
    "normalize_query",
    "normalize_text",
    "pinyin_grams",
    "pinyin_match",
    "pinyin_of",
    "query_grams",
    "read_aliases_csv",
    "rebuild_index",
    "reindex_entries",
    "reindex_entry",
    "save_alias",
    "search",
    "strip_fillers",
    "syllables",
    "top_misses",
    "validate_filters",
    "within_one_edit",
]
