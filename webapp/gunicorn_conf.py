"""gunicorn settings of the platform's web server (`gunicorn -c python:webapp.gunicorn_conf wsgi:app`,
as the Procfile and `make run` start it): hooks and the access log's format; everything else stays on the
command line."""

from __future__ import annotations

import time
from typing import Any

# gunicorn's default access line holds the request line and the Referer, query strings included: a
# search for a name or an ID number (percent-encoded, so no masking sees it), a lookup's holder_code.
# The path without its query (%(U)s) is what the application's own access log keeps too
# (docs/operations.md: query strings are not logged).
access_log_format = '%(h)s - - %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'


def post_worker_init(worker: Any) -> None:
    """Before a worker takes its first request: load what the first search would (catalog.search.warm)."""
    from catalog.search.warm import warm_up

    started = time.perf_counter()
    warm_up()
    worker.log.info("search tables loaded in %.2f s", time.perf_counter() - started)
