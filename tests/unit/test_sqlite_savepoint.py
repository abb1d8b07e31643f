"""On SQLite a savepoint that does a transaction's first write is undone by the transaction's rollback
(pysqlite opened no transaction before SAVEPOINT, so the release committed the write)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.db import make_engine


def test_a_released_savepoint_is_undone_by_the_rollback_of_its_transaction(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with Session(engine) as session:
        with session.begin_nested():
            session.execute(sa.text("INSERT INTO t VALUES (1)"))
        session.rollback()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0
    with Session(engine) as session:
        with session.begin_nested():
            session.execute(sa.text("INSERT INTO t VALUES (2)"))
        session.commit()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalars().all() == [2]
