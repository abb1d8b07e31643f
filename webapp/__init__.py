"""The platform's application factory: core's infrastructure plus every domain's API, pages and CLI.

It lives outside ``core`` and imports the domains with plain imports, so that import-linter sees
each edge (core never imports a domain; views never import this module back). The demo's commands
are not here: only the demo runner adds them (``demo.app``).
"""

from __future__ import annotations

from flask import Flask

import catalog.api
import catalog.cli
import catalog.portal_views
import catalog.quality_views
import catalog.revision_api
import catalog.revision_views
import catalog.search_api
import catalog.views
import core.auth_views
import core.cli
import core.ops_cli
import core.users_api
import licenses.api
import licenses.cli
import licenses.sync_api
import licenses.views
import reports.case_views
import reports.cpsv_views
import reports.views
from core.app import build_app
from core.config import Settings
from core.db import Database
from licenses import sync
from webapp.tasks import make_publisher, make_scheduler

# Each module exposes register(app, api); the order is the order of the web layer's routes.
WEB_MODULES = (
    core.auth_views,
    core.cli,
    core.users_api,
    catalog.api,
    catalog.revision_api,
    catalog.views,
    catalog.revision_views,
    catalog.quality_views,
    catalog.cli,
    catalog.search_api,
    catalog.portal_views,
    licenses.api,
    licenses.views,
    licenses.cli,
    licenses.sync_api,
    reports.views,
    reports.cpsv_views,
    reports.case_views,
    core.ops_cli,
)


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    app, api = build_app(settings, database)
    for module in WEB_MODULES:
        module.register(app, api)
    # Celery is wired here, at the entry point, so no domain module imports celery_app.
    app_settings: Settings = app.extensions["gaogang.settings"]
    app.extensions["gaogang.publish_task"] = make_publisher(app_settings)
    sync.bind_drain_scheduler(app.extensions["gaogang.db"], make_scheduler(app_settings))
    return app
