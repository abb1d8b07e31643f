"""Engine and session handling. Services take a Session, flush, never commit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, SQLModel

# Primary keys are INTEGER columns on both databases: a larger id cannot exist, and sending one to
# PostgreSQL overflows (a 500). Routing and schemas refuse such ids before any query.
MAX_DB_ID = 2**31 - 1


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    # Bound parameters hold licence holders' names and ID numbers; SQLAlchemy would put them in
    # every error message (and so in the error log). The statement alone is enough to debug.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "savepoint")
        def _begin_before_savepoint(conn: sa.Connection, _name: str) -> None:
            # pysqlite opens a transaction only before a data-changing statement, never before
            # SAVEPOINT: a savepoint that came first ran outside any transaction, so releasing it
            # committed its writes and the request's later rollback could not undo them (an entry
            # claimed, then the request failed: the entry stayed, without its version or audit row).
            raw = conn.connection.driver_connection
            if raw is not None and not raw.in_transaction:
                conn.exec_driver_sql("BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


class Database:
    """Owns the engine and the session factory. Tests rebind ``sessionmaker`` to a connection."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessionmaker: sessionmaker[Session] = sessionmaker(
            bind=self.engine, class_=Session, expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.sessionmaker()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work for the CLI and the workers: commit on success, roll back on error."""
        session = self.sessionmaker()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def describe(self) -> str:
        """The database in use, without credentials (for /healthz and logs)."""
        return self.engine.url.render_as_string(hide_password=True)



class _HasId(Protocol):
    id: int | None


def id_of(row: _HasId) -> int:
    """The primary key of a row that the database has given one.

    Table models type ``id`` as ``int | None`` because it is ``None`` until the INSERT is flushed;
    a row loaded from the database or flushed always has it, and services take ``int`` ids. A row
    without an id here is a bug in the caller (it forgot to flush), so it fails loudly.
    """
    if row.id is None:
        raise RuntimeError(f"{type(row).__name__} has no primary key yet: flush it first")
    return row.id


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core ``Table`` behind a table model, for bulk statements.

    SQLModel sets ``__table__`` at class creation but does not declare it, so the attribute is
    invisible to the type checker; the mapper's ``local_table`` is the same object, typed.
    """
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def flush_unique(session: Session, error: Exception) -> None:
    """Flush in a savepoint; a unique violation raises ``error`` instead (and undoes only the flush).

    A service checks for a duplicate before it writes; a concurrent write of the same key committed
    after that check meets the unique index here, and the caller's answer is the check's, not a 500."""
    try:
        with session.begin_nested():
            session.flush()
    except sa.exc.IntegrityError as exc:
        raise error from exc


def compare_and_set(
    session: Session, model: type[SQLModel], row_id: int | None, expected: Mapping[str, Any], **values: Any
) -> bool:
    """One conditional UPDATE: set ``values`` on the row ``row_id`` of ``model`` only while its columns
    still hold ``expected`` (what this request read); False when another writer changed them meanwhile.

    The guard of a state change on SQLite, which has no row locks: of two requests that read the same
    state (two approvals, an approval and a rejection), the second matches no row and writes nothing.
    On PostgreSQL the UPDATE waits for the other transaction and is evaluated again on the row it left.
    """
    table = table_of(model)
    conditions = [table.c.id == row_id, *(table.c[column] == value for column, value in expected.items())]
    return session.connection().execute(sa.update(table).where(*conditions).values(**values)).rowcount == 1
