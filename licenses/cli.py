"""Placeholder: filled in by the issue that owns this module."""

from typing import Any

from flask import Flask


def register(app: Flask, api: Any) -> None:
    """Nothing registered yet."""
