"""Catalogue part of the demo (filled in by the catalogue foundation issue)."""

from __future__ import annotations

from core.config import Settings
from core.db import Database


def load(db: Database, settings: Settings) -> None:
    """Idempotent: does nothing when the demo is already there."""
