"""Fault switches (``PUT /_faults``, only with ``--enable-faults``): make the registry slow, flaky, down or
wrong in the ways a real remote system is.

The switches and their counters live in the registry's own database, not in a process: under gunicorn
with several workers a switch set through one process holds for every process at once, and the counters
add up over all of them. A registry started without faults never reads them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from city_registry.store import fault_counters, fault_state

BAD_RESPONSES = ("malformed", "wrong_count", "unknown_status", "error_body")
DEFAULTS: dict[str, Any] = {
    "error_rate": 0.0,  # share of API requests answered with status_code
    "status_code": 503,
    "latency_ms": 0,  # added before every API request
    "down": False,  # close connections without answering
    "down_until": 0.0,  # Unix time; down until then (set via down_for_s)
    "bad_response": None,  # one of BAD_RESPONSES, for batch answers
    "bad_rate": 1.0,
    "reject_keys": [],  # idem_keys rejected as invalid
    "clock_skew_s": 0,  # the registry's clock runs this many seconds off (API requests only)
}
COUNTERS = ("requests", "faulted", "dropped", "bad")


class Faults:
    """The shared switches of one registry database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def state(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            raw = conn.execute(sa.select(fault_state.c.value).where(fault_state.c.name == "state")).scalar()
        return {**DEFAULTS, **(json.loads(raw) if raw else {})}

    def counters(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            held = dict(conn.execute(sa.select(fault_counters.c.name, fault_counters.c.n)).tuples().all())
        return {name: int(held.get(name, 0)) for name in COUNTERS}

    def count(self, name: str) -> None:
        """One more ``name``, atomically across processes."""
        with self.engine.begin() as conn:
            done = conn.execute(
                fault_counters.update().where(fault_counters.c.name == name).values(n=fault_counters.c.n + 1)
            ).rowcount
            if not done:
                try:
                    with conn.begin_nested():
                        conn.execute(fault_counters.insert().values(name=name, n=1))
                except sa.exc.IntegrityError:  # another process inserted it first
                    conn.execute(fault_counters.update().where(fault_counters.c.name == name)
                                 .values(n=fault_counters.c.n + 1))

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - set(DEFAULTS) - {"down_for_s", "reset"}
        if unknown:
            raise ValueError(f"unknown fault switches: {sorted(unknown)}")
        with self.engine.begin() as conn:
            if changes.get("reset"):  # the switches, not the counters: they count over the registry's life
                state = dict(DEFAULTS)
            else:
                raw = conn.execute(
                    sa.select(fault_state.c.value).where(fault_state.c.name == "state")
                ).scalar()
                state = {**DEFAULTS, **(json.loads(raw) if raw else {})}
            for k, v in changes.items():
                if k == "down_for_s":
                    state["down_until"] = time.time() + float(v)
                elif k != "reset":
                    state[k] = v
            if state["bad_response"] not in (None, *BAD_RESPONSES):
                raise ValueError(f"bad_response must be one of {BAD_RESPONSES}")
            value = json.dumps(state)
            done = conn.execute(fault_state.update().where(fault_state.c.name == "state").values(value=value))
            if not done.rowcount:
                conn.execute(fault_state.insert().values(name="state", value=value))
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return {**self.state(), "counters": self.counters()}

    @staticmethod
    def is_down(state: dict[str, Any]) -> bool:
        return bool(state["down"]) or time.time() < float(state["down_until"])
