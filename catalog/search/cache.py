"""A per-process cache of search answers, keyed by the search state token (catalog.search.state)
and the request's arguments. Correct by construction: an answer is served only under the token it
was computed at, and the token changes with every change to the data a search reads; when a new
token is seen the whole cache is dropped. Bounded (least recently used out first)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
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
