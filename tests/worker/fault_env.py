"""Processes the fault suite starts, stops and kills: its own redis-server (so it can be restarted
without disturbing anyone else's), plus the read-outs of the district and the registry it checks.

This module holds no tests.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from core.db import table_of
from licenses.models import Licence, LicenceOutbox


class RedisProcess:
    """A throwaway redis-server on a fixed port (chosen once), restartable on the same port."""

    def __init__(self, tmp: Path, port: int) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is needed for the fault suite (apt-get install redis-server)")
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.dir = tmp / f"redis-{port}"
        self.dir.mkdir(exist_ok=True)
        self.cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--dir", str(self.dir)]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> RedisProcess:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def district_truth(session: Any, first_licence_id: int) -> dict[str, tuple[str, int, str]]:
    """licence key -> (identifier, revision, status) of each licence's current version, read from the
    licence table itself (not the outbox), for licences issued from ``first_licence_id`` on."""
    t = table_of(Licence)
    rows = session.execute(
        sa.select(t.c.identifier, t.c.revision, t.c.status)
        .where(t.c.is_current.is_(True), t.c.id >= first_licence_id)
    )
    return {ident.rsplit(".", 2)[0]: (ident, int(rev), status) for ident, rev, status in rows}


def outbox_rows(session: Any) -> list[Any]:
    t = table_of(LicenceOutbox)
    return list(session.execute(
        sa.select(t.c.id, t.c.identifier, t.c.version, t.c.idem_key, t.c.status, t.c.attempts, t.c.last_error,
                  t.c.created_at, t.c.updated_at)
        .order_by(t.c.id)
    ))


def applied_twice(registry_url: str) -> list[dict[str, Any]]:
    """Changes the registry wrote more than once (from its applied-writes log)."""
    from city_registry.store import RegistryStore

    store = RegistryStore(registry_url)
    try:
        return store.applied_twice()
    finally:
        store.engine.dispose()


@dataclass
class Tally:
    """What a run did and found; printed as the soak's summary."""

    operations: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    settles: int = 0
    examples: int = 0
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    stuck: set[str] = field(default_factory=set)
    dead_letters: set[str] = field(default_factory=set)  # without a permanent cause
    permanent_dead_letters: set[str] = field(default_factory=set)  # registry refusals, requeued
    reconcile_differences: int = 0
    reconcile_runs: int = 0
    worker_deaths: int = 0  # the worker exited or hung by itself (killed and restarted by the suite)
    acks_lost: int = 0  # "Couldn't ack/reject" logged by kombu on a Redis loss; the worker went on
    known: dict[str, str] = field(default_factory=dict)  # violations of findings not fixed yet

    def op(self, kind: str) -> None:
        self.operations[kind] = self.operations.get(kind, 0) + 1

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def summary(self, seed: int, minutes: float) -> str:
        ops = sum(self.operations.values())
        faults = sum(self.faults.values())
        return "\n".join([
            f"fault suite summary (seed={seed}, {minutes:.1f} min, {self.examples} runs, "
            f"{self.settles} settles)",
            f"  operations: {ops}  " + ", ".join(f"{k}={v}" for k, v in sorted(self.operations.items())),
            f"  faults injected: {faults}  " + ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())),
            f"  lost: {len(self.lost)}  duplicated: {len(self.duplicated)}  stuck: {len(self.stuck)}  "
            f"dead-lettered: {len(self.dead_letters)}",
            f"  registry refusals (permanent dead letters, requeued by the operator): "
            f"{len(self.permanent_dead_letters)}",
            f"  reconciliations: {self.reconcile_runs}, not consistent: {self.reconcile_differences}",
            f"  worker exited or hung by itself (killed and restarted): {self.worker_deaths}",
            f"  acks lost on a Redis loss (the worker went on): {self.acks_lost}",
            *(f"  known, not fixed yet: {k}" for k in sorted(self.known)),
        ])
