"""Publishing Celery tasks from the web app: the only place outside the entry points that imports
``celery_app`` (import-linter keeps the domains off it). The app factory installs these; views reach
the publisher through ``app.extensions["gaogang.publish_task"]``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.coalesce import Coalescer
from core.config import Settings
from licenses import sync

if TYPE_CHECKING:
    from celery import Celery


def make_publisher(settings: Settings) -> Callable[[str], None]:
    """Publish a task by name on the sync queue (the web app never imports workers)."""
    producer: dict[str, Celery] = {}

    def publish(task: str) -> None:
        if "celery" not in producer:
            from celery_app import make_celery

            producer["celery"] = make_celery(settings, publisher=True)
        # No publish retry: after a commit the outbox row is the guarantee, not this message.
        producer["celery"].send_task(task, queue="sync", retry=False)

    return publish


def make_scheduler(settings: Settings) -> Callable[[], None]:
    """The app's drain scheduler: publish ``workers.sync_drain`` after a commit that wrote outbox rows,
    unless a drain is already queued or waiting for its retry (core.coalesce: the broker holds one drain
    message however many licences are written while the registry is down)."""
    publish = make_publisher(settings)
    token = Coalescer(settings.redis_url, sync.DRAIN_JOB)

    def schedule() -> None:
        if not token.take(sync.DRAIN_REQUEST_TTL_S):
            return
        try:
            publish("workers.sync_drain")
        except Exception:
            token.give_back()
            raise

    return schedule
