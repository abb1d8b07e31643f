"""The Celery app: broker, queues and settings. Workers never need Flask.

Redis when REDIS_URL is set; otherwise kombu's filesystem transport under instance/broker, which
needs no server (see docs/ and ../shared/STACK_NOTES.md for why this transport).
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from core.config import Settings


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.from_env()
    app = Celery("gaogang", include=["workers.tasks"])
    conf: dict[str, object] = {
        "broker_url": settings.broker_url,
        "task_default_queue": "default",
        "task_queues": [Queue("default"), Queue("sync")],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "timezone": "Asia/Shanghai",
        "enable_utc": True,
    }
    if settings.redis_url:
        # Longest retry backoff stays well under this, so a late ack never causes a surprise redelivery.
        conf["broker_transport_options"] = {"visibility_timeout": 3600}
    else:
        folder = settings.broker_folder
        for sub in ("queue", "processed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            "polling_interval": 0.1,
        }
    app.conf.update(conf)
    app.conf.gaogang_settings = settings
    return app


app = make_celery()
