"""One queued message per job, however many times it is asked for: a token in Redis (``SET NX`` with an
expiry) that the first request takes and the job gives back when it starts.

Why: every commit that writes outbox rows asks for a drain. Without coalescing, a registry that is down
turned each of those requests into a message of its own, each retried with backoff, so the broker held
one retry chain per commit of the outage (docs/benchmarks.md, back-pressure). With the token, a request
made while a drain is queued or waiting for its retry publishes nothing: that drain will claim the rows.

The order that makes it safe: the requester commits, then takes the token; the job gives the token back
*before* it reads the rows. A commit made before the give-back is seen by the job's read; a request made
after it finds the token free and publishes a new message. The expiry bounds the damage of a message that
was lost with its token held (a killed publisher, a Redis restart): later requests publish again, and the
periodic sweep sends whatever is pending meanwhile.

Without Redis (the embedded broker) there is nothing to hold the token in: every request publishes, as
before, which is what a single-machine demo needs.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class Coalescer:
    """The token of one job in the broker's Redis database."""

    def __init__(self, redis_url: str | None, name: str) -> None:
        self.key = f"gaogang:coalesce:{name}"
        self._redis: Any = None
        if redis_url:
            import redis

            # Short timeouts: this runs after a web request's commit, which must not hang on Redis.
            self._redis = redis.Redis.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=2.0)

    def take(self, ttl_s: float) -> bool:
        """True when the caller should publish the job (the token was free, or cannot be checked)."""
        if self._redis is None:
            return True
        try:
            return bool(self._redis.set(self.key, "1", nx=True, px=max(int(ttl_s * 1000), 1)))
        except Exception:  # Redis unreachable: publishing fails the same way and says so; never block
            log.debug("coalescing token %s unavailable", self.key, exc_info=True)
            return True

    def give_back(self) -> None:
        """The job has started (or its message could not be published): the next request publishes."""
        if self._redis is None:
            return
        try:
            self._redis.delete(self.key)
        except Exception:  # the expiry frees it
            log.debug("could not give back coalescing token %s", self.key, exc_info=True)

    def held_ms(self) -> int | None:
        """Milliseconds left on the token (None when free or without Redis): for tests and benchmarks."""
        if self._redis is None:
            return None
        left = int(self._redis.pttl(self.key))
        return left if left > 0 else None
