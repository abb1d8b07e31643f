"""The Celery app: broker, queues, beat schedule and settings. Workers never need Flask.

Redis when REDIS_URL is set; otherwise kombu's filesystem transport under instance/broker, which
needs no server (see docs/city_registry.md and ../shared/STACK_NOTES.md). The filesystem transport
drops a message whose worker is killed; the outbox plus the periodic sweep make that harmless.

``celery -A celery_app worker -B -Q default,sync`` uses the module attribute ``app``, built on first
use so that importing this module (the web app does, to enqueue) has no side effects.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

from core import workdays
from core.config import Settings
from core.logging import install_log_scrubbing

SYNC_QUEUE = "sync"
# Longest retry backoff of a sync task; kept well under the Redis visibility_timeout below.
RETRY_BACKOFF_MAX = 120
VISIBILITY_TIMEOUT = 3600
# A publisher (the web app enqueueing a drain after its commit) gives up at once when Redis is down
# or unreachable: the outbox row stands and the sweep sends it. Without these, kombu's reconnect loop
# held every licence write ~6 s. One immediate retry still absorbs a pooled connection that Redis
# closed when it restarted.
PUBLISH_TRANSPORT_OPTIONS: dict[str, float | int] = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
    "socket_connect_timeout": 1.0,
    "socket_timeout": 2.0,
}


def make_celery(
    settings: Settings | None = None, *, sweep_seconds: float = 30.0, publisher: bool = False
) -> Celery:
    """The Celery app; ``publisher=True`` for one that only sends tasks and must fail fast."""
    settings = settings or Settings.from_env()
    install_log_scrubbing()  # worker logs quote registry answers and database errors too
    app = Celery("gaogang", include=["workers.tasks"])
    conf: dict[str, object] = {
        "broker_url": settings.broker_url,
        "task_default_queue": "default",
        "task_queues": [Queue("default"), Queue(SYNC_QUEUE)],
        "task_routes": {"workers.sync_*": {"queue": SYNC_QUEUE}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_connection_timeout": 3,
        "timezone": "Asia/Shanghai",
        "enable_utc": True,
        "beat_schedule": {
            # Safety net: anything pending (a lost enqueue, a killed worker) is sent within a sweep.
            "licence-sync-sweep": {
                "task": "workers.sync_sweep",
                "schedule": sweep_seconds,
                "options": {"queue": SYNC_QUEUE, "expires": sweep_seconds},
            },
            # 电子监察: yellow and red warnings move with the calendar, so they are recomputed daily.
            "case-warnings-refresh": {
                "task": "workers.refresh_case_warnings",
                "schedule": crontab(hour=1, minute=10),
                "options": {"queue": "default"},
            },
            # Nightly reconciliation reads the baseline kept on write (its cost follows the differences);
            # once a week it first recomputes that baseline from the whole outbox (licenses.recon_state),
            # the full check against changes made behind the writers' back.
            "licence-sync-reconcile": {
                "task": "workers.sync_reconcile",
                "schedule": crontab(hour=2, minute=30, day_of_week="mon-sat"),
                "options": {"queue": SYNC_QUEUE},
            },
            "licence-sync-reconcile-verify": {
                "task": "workers.sync_reconcile",
                "schedule": crontab(hour=2, minute=30, day_of_week="sun"),
                "kwargs": {"verify": True},
                "options": {"queue": SYNC_QUEUE},
            },
        },
    }
    if settings.redis_url:
        options: dict[str, object] = {"visibility_timeout": VISIBILITY_TIMEOUT}
        if publisher:
            options.update(PUBLISH_TRANSPORT_OPTIONS)
            conf["broker_connection_timeout"] = PUBLISH_TRANSPORT_OPTIONS["socket_connect_timeout"]
        conf["broker_transport_options"] = options
    else:
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        # kombu's transport with atomic publishing: its own can hand a half-written message to a
        # consumer, which then stops (workers/fs_transport.py).
        conf["broker_transport"] = "workers.fs_transport:Transport"
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            # kombu's default is ./control under the current directory; keep it in the instance.
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.1,
        }
    app.conf.update(conf)
    app.conf.gaogang_settings = settings
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            # The worker's entry point: refuse to start without the registry key (named).
            settings = Settings.from_env()
            settings.require_city_registry_key()
            workdays.notices()  # and without a readable holiday notices file (the line named)
            _app = make_celery(settings)
        return _app
    raise AttributeError(name)
