"""Thin Celery tasks: take ids or batch bounds, open a session, call a domain function."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.ping")
def ping() -> str:
    """Liveness probe for the worker; no transaction, idempotent."""
    return "pong"
