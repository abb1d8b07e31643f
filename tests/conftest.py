"""Shared fixtures: a migrated PostgreSQL (and SQLite where both must behave alike), per-test rollback.

The PostgreSQL URL comes from TEST_DATABASE_URL, else DATABASE_URL, else the local server on its
default port (``make test`` makes sure one is running). A missing server fails loudly.

``make test`` runs the suite on every core with pytest-xdist. Each xdist worker gets its own databases
(the name ends in ``_gw0``, ``_gw1``...; the worker suites derive theirs from it) and its own Redis
database number (``redis_db``), so no test sees another worker's data. Tests that share an expensive
module- or session-wide fixture run on one xdist worker (``xdist_group``, see below).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from core.config import Settings
from core.db import Database, make_engine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/gaogang_test"
# The node id prefix of this conftest's own fixtures (its folder, relative to the rootdir).
ROOT_CONFTEST_BASEID = Path(__file__).resolve().parent.relative_to(ROOT).as_posix()


def _normalise(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def xdist_worker() -> str | None:
    """The pytest-xdist worker id ("gw0", "gw1"...) in a parallel run, None in a serial one."""
    return os.environ.get("PYTEST_XDIST_WORKER")


# The worker suites that use the shared Redis server each take one base database (5, 6 and 7 today:
# test_sync_faults, test_case_warnings_task, test_scale_out). Since those suites run at the same time
# on different xdist workers, each worker shifts every base past all of them: gw0 uses 5-7, gw1 8-10,
# gw2 11-13... Distinct for up to five xdist workers with Redis' 16 databases (the Makefile runs at most
# five); a suite added with a new base raises REDIS_BASES.
REDIS_BASES = 3


def redis_db(base: int) -> int:
    """Redis database number for the suite whose base is ``base``, in this process: no two suites and
    no two xdist workers share one, so none flushes another's queues."""
    worker = xdist_worker()
    offset = int(worker.removeprefix("gw")) if worker else 0
    return (base + offset * REDIS_BASES) % 16


def pg_test_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_PG
    url = _normalise(url)
    if not url.startswith("postgresql"):
        url = DEFAULT_PG
    worker = xdist_worker()
    if worker:
        parsed = sa.engine.make_url(url)
        url = parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)
    return url


def _shared_fixture_group(item: pytest.Item) -> str | None:
    """The xdist group for a test that shares an expensive fixture beyond itself. Without a group,
    xdist would build such a fixture once on each of its workers.

    - A session-wide fixture of a sub-folder's conftest (the browser site) is shared by that folder:
      the group is the folder.
    - A module-, class- or package-scoped fixture (a registry process, a worker suite's Celery worker
      and Redis, a synthetic catalogue) is shared by its module: the group is the module. Two such
      modules may run at once on two xdist workers: each worker suite has its own databases, Redis and
      ports, so they need no group of their own across modules (that single group was most of the run's
      critical path)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    defs = [d for ds in info.name2fixturedefs.values() for d in ds]
    for d in defs:
        if d.scope == "session" and d.baseid and d.baseid != ROOT_CONFTEST_BASEID and "::" not in d.baseid \
                and not d.baseid.endswith(".py"):
            return d.baseid
    if any(d.scope in ("module", "class", "package") for d in defs):
        group = str(item.path.relative_to(ROOT))
        if getattr(getattr(item, "module", None), "XDIST_GROUP_PER_TEST_FUNCTION", False):
            # A long module whose fixtures are cheap next to its tests (test_api_fuzz: one app, one
            # small world) runs each test function's cases on one worker, its own module fixtures
            # built there, instead of all of them on one worker that the rest of the run waits for.
            group += "::" + getattr(item, "originalname", item.name)
        return group
    return None


def _starts_early(item: pytest.Item) -> bool:
    """Tests that take many seconds each (marked ``slow``, and the worker suites) are handed out first,
    so that no xdist worker starts one of them when the others are nearly done."""
    return item.get_closest_marker("slow") is not None or item.get_closest_marker("worker") is not None


def _set_nodeid(item: pytest.Item, nodeid: str) -> None:
    # pytest 9 keeps the id as a NodeId in ``_id``; older versions as a string in ``_nodeid`` (which is
    # what pytest-xdist 3.8 still sets for its groups, without effect on pytest 9: hence we do it here).
    if hasattr(item, "_id"):
        from _pytest.nodeid import coerce_node_id

        item._id = coerce_node_id(nodeid)
    else:
        setattr(item, "_nodeid", nodeid)  # noqa: B010  (a private attribute of older pytest versions)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: a test of many seconds (real processes, a whole demo or catalogue); started first"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first; under xdist: one node id per test, and the group of a test in its node id
    (``@group``), which is how ``--dist loadgroup`` keeps a group on one worker.

    xdist schedules by node id and would run only the first of several tests with the same id, so a
    running number (stable since collection order is the same on every worker) keeps each its own."""
    loadgroup = bool(getattr(config.option, "loadgroup", False))
    # A stable sort: within "early" and "the rest", collection order (and so module fixtures) is kept.
    # xdist hands out groups by size first, then single tests in this order.
    items.sort(key=lambda item: not _starts_early(item))
    seen: dict[str, int] = {}
    for item in items:
        nodeid = item.nodeid
        count = seen.get(nodeid, 0)
        seen[nodeid] = count + 1
        if count:
            nodeid = f"{nodeid}[{count}]"
        marker = item.get_closest_marker("xdist_group")
        group = str(marker.args[0]) if marker and marker.args else _shared_fixture_group(item)
        if group and not marker:
            item.add_marker(pytest.mark.xdist_group(group))
        if group and loadgroup:
            nodeid = f"{nodeid}@{group}"
        if nodeid != item.nodeid:
            _set_nodeid(item, nodeid)


def _ensure_pg_database(url: str) -> None:
    target = sa.engine.make_url(url)
    admin = make_engine(target.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).first()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    except sa.exc.OperationalError as exc:
        pytest.exit(f"PostgreSQL is not reachable at {target.render_as_string()}: {exc}. "
                    "Run the tests with `make test`, which starts it.", returncode=3)
    finally:
        admin.dispose()


def alembic_config(url: str) -> Config:
    """The project's alembic configuration pointed at ``url`` (quiet: the tests keep their logging)."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    return cfg


def sqlite_at_revision(tmp_path: Path, revision: str) -> tuple[Config, sa.Engine]:
    """A new SQLite file migrated up to ``revision``: the configuration (to go on up or down) and an
    engine on it, for tests of one migration's data changes."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, revision)
    return cfg, sa.create_engine(url)


def migrate(url: str) -> None:
    """Build the schema the way production does: alembic upgrade heads."""
    command.upgrade(alembic_config(url), "heads")


# ---- one migrated template database per run ---------------------------------------------------------
# Every PostgreSQL database the suite needs migrated (each xdist worker's, and the worker suites' own)
# is a copy of one template that ``alembic upgrade heads`` built once in this run: CREATE DATABASE ...
# TEMPLATE copies the files in a fraction of the time the migrations take, and the migrations still run
# (once) in every run. The template is marked with the run's id (the one pytest-xdist gives all its
# workers), so no run ever copies a template an earlier run built from other migrations.
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex


def template_database_url() -> str:
    """``<test db>_template`` on the test server: one per run, shared by all xdist workers."""
    url = sa.engine.make_url(
        _normalise(os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_PG)
    )
    if not url.drivername.startswith("postgresql"):
        url = sa.engine.make_url(DEFAULT_PG)
    return url.set(database=f"{url.database}_template").render_as_string(hide_password=False)


def _ensure_template(admin: sa.Connection, template: sa.engine.URL) -> None:
    """Build the template for this run unless another worker already has (the caller holds the lock)."""
    marker = f"migrated template of test run {_RUN_ID}"
    found = admin.execute(
        sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"),
        {"n": template.database},
    ).first()
    if found is not None and found[0] == marker:
        return
    admin.execute(sa.text(f'DROP DATABASE IF EXISTS "{template.database}" WITH (FORCE)'))
    admin.execute(sa.text(f'CREATE DATABASE "{template.database}"'))
    text = template.render_as_string(hide_password=False)
    migrate(text)  # closes its engine: PostgreSQL copies no database that has a connection open
    admin.execute(sa.text(f'COMMENT ON DATABASE "{template.database}" IS \'{marker}\''))


def reset_and_migrate_pg(url: str) -> None:
    """Make the database at ``url`` a fresh copy of this run's migrated template (dropping it first,
    with any connection left open on it). The first call in a run builds the template; calls from
    several xdist workers take turns on an advisory lock."""
    target = sa.engine.make_url(url)
    template = sa.engine.make_url(template_database_url())
    admin = make_engine(target.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": template.database})
            try:
                _ensure_template(conn, template)
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}" TEMPLATE "{template.database}"'))
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": template.database})
    except sa.exc.OperationalError as exc:
        pytest.exit(f"PostgreSQL is not reachable at {target.render_as_string()}: {exc}. "
                    "Run the tests with `make test`, which starts it.", returncode=3)
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = pg_test_url()
    reset_and_migrate_pg(url)
    return url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def pg_database(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    yield db
    db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_database(sqlite_url: str) -> Iterator[Database]:
    db = Database(sqlite_url)
    yield db
    db.engine.dispose()


def _bound_database(database: Database) -> Iterator[tuple[Database, Session]]:
    """A Database whose sessions all join one outer transaction that is rolled back afterwards."""
    connection = database.engine.connect()
    outer = connection.begin()
    bound = Database.__new__(Database)
    bound.url = database.url
    bound.engine = database.engine
    bound.sessionmaker = sessionmaker(
        bind=connection, class_=Session, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    session = bound.session()
    try:
        yield bound, session
    finally:
        session.close()
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture
def db(pg_database: Database) -> Iterator[Database]:
    """PostgreSQL, rolled back after the test."""
    for bound, _session in _bound_database(pg_database):
        yield bound


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    s = db.session()
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_session(request: pytest.FixtureRequest) -> Iterator[Session]:
    """The same test on the embedded SQLite and on PostgreSQL, rolled back after each."""
    fixture = {"sqlite": "sqlite_database", "postgresql": "pg_database"}[request.param]
    database = request.getfixturevalue(fixture)
    for _bound, s in _bound_database(database):
        yield s


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    base = Settings(
        database_url=database_url,
        instance_dir=tmp_path,
        secret_key="test-secret-key",
        testing=True,
        ratelimit_enabled=False,
        city_registry_database_url=f"sqlite:///{tmp_path / 'registry.db'}",
    )
    return base.with_overrides(**overrides)


@pytest.fixture
def app(db: Database, tmp_path: Path) -> Any:
    from webapp import create_app

    flask_app = create_app(make_settings(tmp_path, db.url), database=db)
    flask_app.config["WTF_CSRF_ENABLED"] = False
    return flask_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _cheap_hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at production cost takes ~0.1 s a user; only tests about hashing need that cost."""
    import core.auth

    monkeypatch.setattr(core.auth, "_hasher", _cheap_hasher())


# ---- one app and one world per module, each test rolled back to a savepoint ---------------------------
# A module whose tests all start from the same data, built through the services (a "world"), builds it
# once instead of once per test: it overrides ``db`` and ``app`` with the two fixtures below and makes
# its world module-scoped on ``module_db``/``module_app``:
#
#     @pytest.fixture(scope="module")
#     def world(module_app, module_db): ...
#
#     @pytest.fixture
#     def db(module_db, per_test_savepoint): return module_db
#
#     @pytest.fixture
#     def app(module_app, per_test_savepoint): return module_app
#
# The module's data lives in one outer transaction (rolled back after the module); each test runs in a
# savepoint of it that is rolled back after the test, so a test sees the world and nothing that an
# earlier test wrote, as with the per-test fixtures. Only for modules whose tests leave the app itself
# (its config, routes and extensions) as they found it, read the world's rows afresh through their own
# session rather than through the world's (detached) objects, and need no file in the app's instance
# folder from an earlier test. The module becomes its own xdist group (or one group per test function
# with XDIST_GROUP_PER_TEST_FUNCTION, see _shared_fixture_group). Worth it: create_app builds
# flask-smorest's OpenAPI document and compiles every route, most of a per-test app's set-up.


@pytest.fixture(scope="module")
def module_connection(pg_database: Database) -> Iterator[sa.Connection]:
    connection = pg_database.engine.connect()
    outer = connection.begin()
    try:
        yield connection
    finally:
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture(scope="module")
def module_db(pg_database: Database, module_connection: sa.Connection) -> Iterator[Database]:
    """PostgreSQL in one transaction for the whole module (see above); with cheap password hashing
    already while the module's world is built."""
    bound = Database.__new__(Database)
    bound.url = pg_database.url
    bound.engine = pg_database.engine
    bound.sessionmaker = sessionmaker(
        bind=module_connection, class_=Session, expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    import core.auth

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(core.auth, "_hasher", _cheap_hasher())
        yield bound


@pytest.fixture(scope="module")
def module_app(module_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from webapp import create_app

    settings = make_settings(tmp_path_factory.mktemp("module-app"), module_db.url)
    flask_app = create_app(settings, database=module_db)
    flask_app.config["WTF_CSRF_ENABLED"] = False
    return flask_app


@pytest.fixture
def per_test_savepoint(module_connection: sa.Connection) -> Iterator[None]:
    """Roll the module's transaction back to where it was before the test."""
    savepoint = module_connection.begin_nested()
    try:
        yield
    finally:
        if savepoint.is_active:
            savepoint.rollback()


def sign_in(client: Any, user_id: int, epoch: int = 0) -> None:
    """Leave in the client's cookie what a login through the form leaves (core.web.start_login_session),
    for tests about pages rather than about logging in. ``epoch`` is the user's session_epoch."""
    import time

    from core.web import SESSION_AUTH_AT, SESSION_EPOCH, SESSION_SEEN, SESSION_USER

    now = time.time()
    with client.session_transaction() as cookie:
        cookie.update({SESSION_USER: user_id, SESSION_EPOCH: epoch, SESSION_AUTH_AT: now, SESSION_SEEN: now})
