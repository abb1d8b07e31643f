"""The verification log's writer: rows of /verify are kept in memory and written in batches.

Writing each check's row in the request cost /verify a transaction of its own (BEGIN, the insert, the
commit: three round trips to PostgreSQL) on every request. Here a check appends its row to this
process's buffer and returns; the buffer is written with one multi-row insert

- by the request whose row fills a batch (``max_rows``) or finds the oldest row older than
  ``max_age`` seconds (it writes after appending, so that request pays for one insert);
- by a background thread once ``max_age`` has passed with rows waiting and no request to write them;
- at a normal exit of the process (``atexit``; gunicorn's workers exit through ``sys.exit`` on
  SIGTERM, SIGQUIT and at ``--max-requests``), so a normal shutdown loses no row.

The thread and the exit hook belong to a served process (``background=True``): tests share one
database connection between sessions and roll it back, so there no thread of ours may use it behind
their back, and they call ``flush`` themselves.

A crash of the process (SIGKILL, the OOM killer, power loss) loses the rows still in the buffer:
at most ``max_age`` seconds of checks in a served process, plus, on PostgreSQL, the last fraction of a
second of rows already written (the batch commits without waiting for the WAL flush). Nothing else is
lost or corrupted, and a failed write keeps its rows for the next attempt (up to ``MAX_PENDING``, then
the oldest are dropped and counted in the error log).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from core.db import Database, table_of
from licenses.models import LicenceVerification

log = logging.getLogger(__name__)

# Rows waiting beyond which the oldest are dropped when the database refuses them for a long time.
MAX_PENDING = 50_000


class VerificationLog:
    """Buffers verification-log rows and writes them in batches (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        *,
        max_rows: int = 500,
        max_age: float = 1.0,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.max_rows = max_rows
        self.max_age = max_age
        self.background = background
        self._clock = clock
        self._pending: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one batch written at a time, in order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._closed = False
        if background:
            atexit.register(self.close)

    def append(self, row: dict[str, Any]) -> None:
        """Keep one row; write the buffer if it is full or its oldest row has waited ``max_age``."""
        now = self._clock()
        with self._lock:
            if not self._pending:
                self._oldest = now
            self._pending.append(row)
            due = len(self._pending) >= self.max_rows or now - self._oldest >= self.max_age
        if self._closed:
            due = True  # after shutdown began nobody else will write it
        elif self.background:
            self._ensure_thread()
        if due:
            self.flush()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write every waiting row now; returns how many were written (0 when the write failed)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, []
            if not batch:
                return 0
            try:
                with self.db.transaction() as session:
                    if session.get_bind().dialect.name == "postgresql":
                        # The log is not worth a WAL flush per batch; see the module's docstring.
                        session.execute(sa.text("SET LOCAL synchronous_commit TO OFF"))
                    session.execute(sa.insert(table_of(LicenceVerification)), batch)
            except Exception:
                self._put_back(batch)
                log.exception("verification log: %d rows not written, kept for the next attempt", len(batch))
                return 0
            return len(batch)

    def _put_back(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            rows = batch + self._pending
            dropped = max(0, len(rows) - MAX_PENDING)
            self._pending = rows[dropped:]
            self._oldest = self._clock()
        if dropped:
            log.error("verification log: %d oldest rows dropped, the database refused them too long", dropped)

    def close(self) -> None:
        """Stop the background thread and write what is left (at exit; idempotent)."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()

    def _ensure_thread(self) -> None:
        # A forked worker (gunicorn --preload) does not inherit the parent's thread: start its own.
        if self._thread is not None and self._thread_pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._thread_pid == os.getpid():
                return
            self._thread_pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="verification-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.max_age / 2)
            if self._closed:
                return
            with self._lock:
                due = bool(self._pending) and self._clock() - self._oldest >= self.max_age
            if due:
                self.flush()
