"""The cache of the CPSV-AP export (reports.cpsv_cache.ExportCache): bounded, and one build for
requests that miss together."""

from __future__ import annotations

import threading
import time

from reports.cpsv_cache import ExportCache


def test_the_cache_keeps_at_most_size_documents_least_recently_used_out_first():
    cache = ExportCache(size=2)
    for key in ("a", "b"):
        cache.get_or_build(key, lambda key=key: key.encode())
    cache.get_or_build("a", lambda: b"rebuilt")  # a hit: "a" is now the most recent
    cache.get_or_build("c", lambda: b"c")
    assert len(cache) == 2
    assert cache.get_or_build("a", lambda: b"rebuilt") == b"a"
    assert cache.get_or_build("b", lambda: b"b again") == b"b again"  # "b" went out
    assert cache.builds == 4


def test_size_zero_keeps_nothing():
    cache = ExportCache(size=0)
    assert cache.get_or_build("a", lambda: b"1") == b"1"
    assert cache.get_or_build("a", lambda: b"2") == b"2"
    assert (len(cache), cache.builds) == (0, 2)


def test_requests_that_miss_together_share_one_build():
    cache = ExportCache()
    started = threading.Barrier(4)
    answers: list[bytes] = []

    def build() -> bytes:
        time.sleep(0.2)  # the others arrive while this one builds
        return b"document"

    def request() -> None:
        started.wait(timeout=5)
        answers.append(cache.get_or_build("ttl", build))

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert answers == [b"document"] * 4
    assert (cache.builds, cache.hits) == (1, 3)
