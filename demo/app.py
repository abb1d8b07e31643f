"""The demo's Flask app: the platform plus the ``flask demo`` commands. Only the demo runner
(``make run``) uses it; a production configuration (``wsgi:app``) has no demo command."""

from __future__ import annotations

from flask import Flask

import demo.cli
from core.config import Settings
from core.db import Database
from webapp import create_app as create_platform_app


def create_app(settings: Settings | None = None, database: Database | None = None) -> Flask:
    app = create_platform_app(settings, database)
    demo.cli.register(app, None)
    return app
