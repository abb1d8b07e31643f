"""core.coalesce on a real Redis: one queued message per job however many times it is asked for
(the drain's back-pressure, docs/city_registry.md). Keys are unique per test, so the shared Redis
database of TEST_REDIS_URL is never flushed."""

from __future__ import annotations

import os
import time
import uuid

import redis

from core.coalesce import Coalescer


def _url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _job() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_only_the_first_request_publishes_until_the_job_gives_the_token_back() -> None:
    token = Coalescer(_url(), _job())
    try:
        assert token.take(60)
        assert not any(token.take(60) for _ in range(20))
        held = token.held_ms()
        assert held is not None
        assert 0 < held <= 60_000
        token.give_back()
        assert token.held_ms() is None
        assert token.take(60)  # a request after the give-back publishes again
    finally:
        token.give_back()


def test_a_token_whose_message_was_lost_frees_itself_when_it_expires() -> None:
    token = Coalescer(_url(), _job())
    assert token.take(0.2)
    assert not token.take(0.2)
    deadline = time.monotonic() + 10
    while token.held_ms() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert token.take(60)
    token.give_back()


def test_two_processes_share_the_token_through_redis() -> None:
    job = _job()
    web, worker = Coalescer(_url(), job), Coalescer(_url(), job)
    assert web.take(60)
    assert not worker.take(60)
    worker.give_back()  # the drain started on the worker
    assert web.take(60)
    redis.Redis.from_url(_url()).delete(web.key)


def test_without_redis_every_request_publishes() -> None:
    token = Coalescer(None, _job())
    assert all(token.take(60) for _ in range(3))
    assert token.held_ms() is None


def test_an_unreachable_redis_never_holds_a_request_back() -> None:
    token = Coalescer("redis://127.0.0.1:1/0", _job())  # nothing listens on port 1
    assert token.take(60)
    token.give_back()  # logged, not raised
