"""The search state token: one number that changes with every change to what a search can answer, so
caches of search results (catalog.search.cache) are keyed by it and never serve an answer older than
the data they are asked about.

What a search reads: the index tables (written only by ``catalog.search.index``), the alias table
(``catalog.search.aliases``), the elsewhere list (``catalog.search.elsewhere``), department names and
levels (``catalog.services.create_department``) and division names (``catalog.divisions``). Each of
those writers calls ``mark_changed`` in its transaction, which writes a new random token: the token
and the data it stands for are committed (or rolled back) together. The benchmark's synthetic
catalogue calls it too. A write around these functions (raw SQL on those tables) must call it as
well, as it must reindex (tests/integration/test_search_index_upkeep.py).

The token is random, not a counter, so a database rebuilt from scratch (or rolled back to a
savepoint) never shows a token that stood for other data. The row is locked from the write to the
commit: writers of the catalogue queue on it (they are administrators' edits and imports).

A reader takes the token first and searches after: what it then reads is at least as new as the
token, so a result stored under a token is never older than that token's data.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.search.sql import _t
from catalog.search_models import SearchState


def mark_changed(session: Session) -> None:
    """A new token, in this transaction: what searches answer is changing."""
    s = _t(SearchState)
    session.connection().execute(sa.update(s).where(s.c.id == 1).values(version=secrets.randbits(62)))


def index_version(conn: sa.Connection) -> int | None:
    """The current token (None when the row is missing: then nothing may be cached)."""
    s = _t(SearchState)
    value = conn.execute(sa.select(s.c.version).where(s.c.id == 1)).scalar()
    return None if value is None else int(value)
