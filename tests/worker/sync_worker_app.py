"""The Celery app the worker tests start: the real one, with a short sweep so tests stay short."""

from celery_app import make_celery

app = make_celery(sweep_seconds=2.0)
