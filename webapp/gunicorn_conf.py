"""gunicorn settings of the platform's web server (`gunicorn -c python:webapp.gunicorn_conf wsgi:app`,
as the Procfile and `make run` start it): hooks only; everything else stays on the command line."""

from __future__ import annotations

import time
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Before a worker takes its first request: load what the first search would (catalog.search.warm)."""
    from catalog.search.warm import warm_up

    started = time.perf_counter()
    warm_up()
    worker.log.info("search tables loaded in %.2f s", time.perf_counter() - started)
