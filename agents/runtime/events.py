"""Run events: every step is a RunEvent row with a sequence number, then a notice on `run.<id>`.

The database is the record. The channel message carries the event itself so live clients need no
query, and clients that missed some replay them from the table by sequence number.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

from agents.models import RunEvent

logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


def publish(run_id: int, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(run_group(run_id), {"type": "run.event", "event": event})
    except Exception:
        # A lost notice is harmless: sockets resync from the table.
        logger.warning("could not publish event %s of run %s", event.get("seq"), run_id, exc_info=True)


class EventWriter:
    """Writes one run's events. Only the worker that claimed the run writes, so it owns the counter."""

    def __init__(self, run_id: int, last_seq: int = 0):
        self.run_id = run_id
        self.seq = last_seq

    def emit(self, type: str, payload: dict[str, Any] | None = None) -> RunEvent:
        self.seq += 1
        event = RunEvent.objects.create(run_id=self.run_id, seq=self.seq, type=type, payload=payload or {})
        publish(self.run_id, event.as_dict())
        return event


def event_emit(*, run_id: int, type: str, payload: dict[str, Any] | None = None) -> RunEvent:
    """Emit from outside the owning worker (e.g. cancelling a queued run): take the next number in SQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE agents_agentrun SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq", [run_id]
        )
        row = cursor.fetchone()
    seq = row[0] if row else 1
    event = RunEvent.objects.create(run_id=run_id, seq=seq, type=type, payload=payload or {})
    publish(run_id, event.as_dict())
    return event
