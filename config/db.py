"""Database connection helpers."""

from __future__ import annotations

from django.conf import settings
from django.db import connection


def release() -> None:
    """Hand this thread's connection back to the pool before a long wait (a model call, a client
    waiting for its run), so waiting holds no connection. Only with the pool configured (without it,
    closing would cost a reconnect) and never inside a transaction; the next query takes one again."""
    if not getattr(settings, "DB_POOL", False):
        return
    if connection.connection is None or connection.in_atomic_block:
        return
    connection.close()
