"""The benchmarks' synthetic catalogue never mixes into a database that holds real entries unless forced."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from benchmarks import search_synth
from catalog.models import CatalogItem, ImplementationEntry
from tests.factories.catalog import make_department, published_entry, seed_divisions


def _entries(session) -> int:
    return session.exec(select(func.count()).select_from(ImplementationEntry)).one()


def test_synthetic_catalogue_refuses_a_database_with_real_entries_and_writes_nothing(any_session):
    seed_divisions(any_session)
    published_entry(any_session, make_department(any_session, "区真实局"))
    before = (_entries(any_session), any_session.exec(select(func.count()).select_from(CatalogItem)).one())

    with pytest.raises(search_synth.RealCatalogueError, match="--force"):
        search_synth.generate(any_session, "district", limit=10)

    after = (_entries(any_session), any_session.exec(select(func.count()).select_from(CatalogItem)).one())
    assert after == before


def test_forced_synthetic_catalogue_is_written_and_marked_synthetic(any_session):
    seed_divisions(any_session)
    published_entry(any_session, make_department(any_session, "区真实局"))
    real = search_synth.real_entry_count(any_session)
    assert real == 1

    written = search_synth.generate(any_session, "district", limit=10, force=True)

    assert written == 10
    assert _entries(any_session) == real + 10
    assert search_synth.real_entry_count(any_session) == real
