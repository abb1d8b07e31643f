"""Real races for the tests of concurrent writes (this module itself holds no tests).

Racing requests need committed data and connections of their own, so these tests cannot use the
rolled-back ``db`` fixture: ``race_db`` is a database of the test module's own, on the embedded SQLite
(a migrated file, the default of ``make run``) and on PostgreSQL (a fresh copy of the migrated template),
kept for the module; each test makes its own rows there. ``race_app`` is the app on it.

``race`` sends requests from real threads, each with its own test client, released together.
``Rendezvous`` makes the interleaving certain instead of likely: patched into a service (``hold_after``,
``hold_before``), it holds every racer at one point of the service until all have reached it, or until
a short timeout passes when one of them cannot (it waits for a row lock the first one holds, which is
exactly what a fix may do). It is used once: later calls pass at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import Database
from tests.conftest import _ensure_pg_database, make_settings, migrate, pg_test_url, reset_and_migrate_pg

HOLD_S = 1.5  # how long the racers wait for each other at a rendezvous


class Rendezvous:
    """Holds the first ``parties`` callers of ``wait`` until all have arrived or HOLD_S has passed."""

    def __init__(self, parties: int, timeout: float = HOLD_S) -> None:
        self._barrier = threading.Barrier(parties, timeout=timeout)
        self._done = False
        self.met = False  # whether all parties arrived (False: one was held elsewhere, e.g. by a lock)

    def wait(self) -> None:
        if self._done:
            return
        try:
            self._barrier.wait()
            self.met = True
        except threading.BrokenBarrierError:
            pass
        self._done = True


def hold_after(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, rendezvous: Rendezvous) -> None:
    """``module.name`` waits at the rendezvous after it has run (e.g. after a read)."""
    original = getattr(module, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        rendezvous.wait()
        return result

    monkeypatch.setattr(module, name, held)


def hold_before(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, rendezvous: Rendezvous) -> None:
    """``module.name`` waits at the rendezvous before it runs (e.g. with a write made, not committed)."""
    original = getattr(module, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        rendezvous.wait()
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, held)


@dataclass
class Answer:
    status: int
    body: Any


def race(app: Any, calls: list[Callable[[Any], Any]]) -> list[Answer]:
    """Run each call with a test client of its own in its own thread, all released at once; the
    answers in the order of ``calls``. A thread's exception fails the test here."""
    start = threading.Barrier(len(calls))
    answers: list[Answer | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[Any], Any]) -> None:
        client = app.test_client()
        try:
            start.wait(timeout=10)
            response = call(client)
            answers[i] = Answer(response.status_code, response.get_json(silent=True))
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(a is not None for a in answers), "a racing request did not finish"
    return [a for a in answers if a is not None]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _database(dialect: str, folder: Path, name: str) -> str:
    if dialect == "sqlite":
        url = f"sqlite:///{folder / f'{name}.db'}"
        migrate(url)
        return url
    pg = sa.engine.make_url(pg_test_url())
    url = pg.set(database=f"{pg.database}_{name}").render_as_string(hide_password=False)
    _ensure_pg_database(url)
    reset_and_migrate_pg(url)
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def race_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A committed database of the module's own (see the module docstring)."""
    name = "race_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    db = Database(_database(request.param, tmp_path_factory.mktemp(name), name))
    yield db
    db.engine.dispose()


@pytest.fixture(scope="module")
def race_app(race_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from webapp import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("race-app"), race_db.url), database=race_db)
    app.config["WTF_CSRF_ENABLED"] = False
    return app
