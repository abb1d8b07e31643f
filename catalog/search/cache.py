"""A per-process cache of search answers, keyed by the search state token (catalog.search.state)
and the request's arguments. Correct by construction: an answer is served only under the token it
was computed at, and the token changes with every change to the data a search reads; when a new
token is seen the whole cache is dropped. Bounded (least recently used out first).

``TokenMemo`` keeps, under the same token, the small reads an uncached search makes on every request
(four statements of the sixteen or so of a distinct query on PostgreSQL, issue 14 item 10)."""

from __future__ import annotations

import contextvars
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_SIZE = 4096


class ResultCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._version: int | None = None
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, version: int | None, key: Hashable) -> Any | None:
        if version is None or self.size <= 0:
            return None
        with self._lock:
            if version != self._version:
                self._data.clear()
                self._version = version
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, version: int | None, key: Hashable, value: Any) -> None:
        if version is None or self.size <= 0:
            return
        with self._lock:
            if version != self._version:
                # Computed under a token that is no longer current here: keep nothing of either.
                return
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


class TokenMemo:
    """Small reads that every uncached search repeats (the alias table, the elsewhere list, division
    and department names), kept per search state token as the answers are: each is read once per token
    and process instead of once per request. What is kept must not be mutated by its readers, except
    the name maps of ``memoised_names``, which only grow.

    A ResultCache of its own (the same token rule); values are boxed so that a read that found nothing
    (None, an empty list) is kept too."""

    def __init__(self, size: int = 256) -> None:
        self._cache = ResultCache(size)

    def get(self, version: int, key: Hashable, compute: Callable[[], Any]) -> Any:
        held = self._cache.get(version, key)
        if held is not None:
            return held[0]
        value = compute()  # outside any lock: it reads the database
        self._cache.put(version, key, (value,))
        return value


# The token the current request read before searching, and its app's memo (``at_token``). Unset (None)
# outside such a scope (the CLI, the evaluation, tests calling the engine): then everything is read.
_SCOPE: contextvars.ContextVar[tuple[int, TokenMemo] | None] = contextvars.ContextVar(
    "search_token_scope", default=None
)


@contextmanager
def at_token(version: int | None, memo: TokenMemo) -> Iterator[None]:
    """Within: ``memoised`` reads are kept under ``version`` (the token read before the search, so
    what is kept is at least as new as the token it is kept under). No token, no memo."""
    reset = _SCOPE.set((version, memo) if version is not None else None)
    try:
        yield
    finally:
        _SCOPE.reset(reset)


def memoised(key: Hashable, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept under the current scope's token (read every time outside a scope)."""
    scope = _SCOPE.get()
    if scope is None:
        return compute()
    return scope[1].get(scope[0], key, compute)


def memoised_names(
    kind: str, keys: list[Any], read: Callable[[list[Any]], dict[Any, str]]
) -> dict[Any, str]:
    """Names of ``keys`` (``read`` looks up the missing ones), kept name by name under the current
    scope's token: a facet list names the same divisions and departments search after search."""
    if _SCOPE.get() is None:
        return read(keys)
    known: dict[Any, str | None] = memoised(("names", kind), dict)
    missing = [k for k in keys if k not in known]
    if missing:
        found = read(missing)
        for k in missing:
            known[k] = found.get(k)  # None: no such row (asked again only under the next token)
    return {k: name for k in keys if (name := known.get(k)) is not None}
