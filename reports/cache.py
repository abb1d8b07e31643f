"""A short-lived cache of computed metrics, so a dashboard page and its chart images share one computation.

Each application holds its own instance (``app.extensions[EXTENSION]``), built by ``reports.views.register``
unless one was injected first; a test or a second app therefore never reads another's figures, and the
same code path runs in tests and production. Writes that change the figures call ``clear()``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

EXTENSION = "gaogang.reports.metrics_cache"
DEFAULT_TTL_SECONDS = 30.0


class MetricsCache:
    """Thread-safe time-to-live cache; ``clock`` is injectable so expiry can be tested without sleeping."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self.ttl_seconds:
                return hit[1]
        value = compute()
        with self._lock:
            for stale in [k for k, (at, _v) in self._entries.items() if now - at >= self.ttl_seconds]:
                del self._entries[stale]
            self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
