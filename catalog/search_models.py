"""Search tables: a character-gram index over distinct texts, postings to entries, aliases, misses.

Names repeat across divisions (三级四同: the same item has the same name in every district), so the
gram index is built over *distinct* texts (``search_term``) and ``search_posting`` links each text to
the entries that carry it. ``search_entry`` is a denormalised copy of the published entries with the
facet columns, so one query never joins the catalogue tables.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.types import UTCDateTime, utcnow

# Fields a text can come from, with the weight order used by ranking (name first).
FIELD_NAME = 0
FIELD_KEYWORD = 1
FIELD_DEPARTMENT = 2
FIELD_MATERIAL = 3


class SearchTerm(SQLModel, table=True):
    """A distinct normalised text (an entry name, department name, keyword or material name)."""

    __tablename__ = "search_term"

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(max_length=300, unique=True)
    pinyin: str = Field(default="", max_length=1500)  # full pinyin, no separators
    initials: str = Field(default="", max_length=300)  # first letter of each syllable


class SearchGram(SQLModel, table=True):
    """Inverted index: a character unigram/bigram (or a ``#``-prefixed pinyin letter bigram) -> term."""

    __tablename__ = "search_gram"

    gram: str = Field(primary_key=True, max_length=8)
    term_id: int = Field(primary_key=True, foreign_key="search_term.id")


class SearchEntry(SQLModel, table=True):
    """The searchable copy of one published implementation entry (facet columns included)."""

    __tablename__ = "search_entry"

    entry_id: int = Field(primary_key=True, foreign_key="implementation_entry.id")
    task_code: str = Field(max_length=31)
    name: str = Field(max_length=200)
    name_len: int = Field(default=0)
    name_term_id: int = Field(foreign_key="search_term.id")
    department_id: int = Field(index=True)
    department_name: str = Field(max_length=100)
    level: str = Field(max_length=1)
    division_code: str = Field(max_length=12)
    task_type: str = Field(max_length=2)
    no_contact: bool = Field(default=False)
    depth_level: int | None = Field(default=None)  # 网上办理深度 Ⅰ–Ⅳ (filter; not a SearchCell dimension)
    # The basic item (基本目录) the entry implements: the service grouped results are keyed by
    # (catalog.search.grouping). Copied here so grouping never joins implementation_entry.
    item_id: int | None = Field(default=None)

    __table_args__ = (
        # A term's entries in id order: the result page reads them with LIMIT, no sort.
        sa.Index("ix_search_entry_term_entry", "name_term_id", "entry_id"),
        # A service's places in the order a grouped page lists them (catalog.search.grouping.page_places
        # reads the first few and the count from the index alone).
        sa.Index("ix_search_entry_item_places", "item_id", "level", "division_code", "entry_id"),
    )


class SearchPosting(SQLModel, table=True):
    """Which entries carry a term, and in which field (see the FIELD_* constants)."""

    __tablename__ = "search_posting"

    term_id: int = Field(primary_key=True, foreign_key="search_term.id")
    field: int = Field(primary_key=True)
    entry_id: int = Field(primary_key=True, foreign_key="search_entry.entry_id", index=True)


class SearchCell(SQLModel, table=True):
    """How many searchable entries with one name term and one service fall in one facet cell.

    ``div_key`` is the facet division (the town for town/village entries, the county otherwise) and
    ``department_id`` is 0 for village committees (the department facet lists county and town
    bodies; villages are reached through the division). ``service`` is the grouping key of
    catalog.search.grouping (the basic item's id) and ``depth`` the 网上办理深度 level, 0 when the entry
    has none. Maintained with the entries' search rows, so a broad query counts its facets over these
    rows instead of every matching entry, and a grouped search reads its (service, term, cell) rows
    here (70,000 rows for 证 at province scale, against 325,000 entries to read and de-duplicate).
    """

    __tablename__ = "search_cell"

    term_id: int = Field(primary_key=True, foreign_key="search_term.id")
    service: int = Field(primary_key=True)
    level: str = Field(primary_key=True, max_length=1)
    div_key: str = Field(primary_key=True, max_length=12)
    department_id: int = Field(primary_key=True)
    task_type: str = Field(primary_key=True, max_length=2)
    no_contact: bool = Field(primary_key=True)
    depth: int = Field(primary_key=True)
    n: int = Field(default=0)


class SearchAlias(SQLModel, table=True):
    """别名 / 俗称: an everyday word and the official wording(s) it stands for ("|"-separated)."""

    __tablename__ = "search_alias"

    id: int | None = Field(default=None, primary_key=True)
    alias: str = Field(max_length=50, unique=True)
    targets: str = Field(max_length=500)
    note: str = Field(default="", max_length=300)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class SearchMiss(SQLModel, table=True):
    """A normalised query that found nothing, with how often and when last seen (for new aliases)."""

    __tablename__ = "search_miss"

    id: int | None = Field(default=None, primary_key=True)
    query: str = Field(max_length=100, unique=True)
    count: int = Field(default=1)
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    __table_args__ = (sa.Index("ix_search_miss_count", "count"),)


class ElsewhereService(SQLModel, table=True):
    """A service the district does not handle (本区不办理), with where to go instead: an administrator's
    list, found by search beside the entries ("本区不办理，请到…").

    ``verified`` False means nobody has checked the body's address, phone and link yet: the portal
    says so ("信息待核实"), and a missing value reads "未填报", never a plausible default.
    """

    __tablename__ = "elsewhere_service"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)  # the service as citizens name it
    words: str = Field(default="", max_length=500)  # search words, "|"-separated
    body: str = Field(max_length=100)  # 办理机构
    address: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, max_length=40)
    url: str | None = Field(default=None, max_length=500)
    note: str = Field(default="", max_length=500)
    verified: bool = Field(default=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class SearchState(SQLModel, table=True):
    """One row: a token that changes in every transaction that changes what a search can answer (the
    index tables, aliases, the elsewhere list, department and division names). Caches of search
    results are keyed by it (catalog.search.state); it is a random number, not a counter, so a
    database rebuilt from scratch never repeats a token an earlier one had."""

    __tablename__ = "search_state"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(sa_type=sa.BigInteger, nullable=False)
