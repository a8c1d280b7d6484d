"""Run events: every step is a RunEvent row with a sequence number, then a notice on `run.<id>`.

The database is the record. The channel message carries the event itself so live clients need no
query, and clients that missed some replay them from the table by sequence number.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

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
    """Writes one run's events. Only the worker that claimed the run writes, so it owns the counter.

    Every event is published at once (the relay path stays short). Token deltas are written to the
    table in small batches, flushed before any other event, every FLUSH_SECONDS, and at the end, so
    a chatty stream is not one INSERT per token. Readers that see a gap wait for the next flush.
    """

    FLUSH_SECONDS = 0.05

    def __init__(self, run_id: int, last_seq: int = 0):
        self.run_id = run_id
        self.seq = last_seq
        self._pending: list[RunEvent] = []
        self._oldest = 0.0

    def emit(self, type: str, payload: dict[str, Any] | None = None) -> RunEvent:
        self.seq += 1
        event = RunEvent(
            run_id=self.run_id, seq=self.seq, type=type, payload=payload or {}, created_at=timezone.now()
        )
        if type == "delta":
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(event)
            if time.monotonic() - self._oldest >= self.FLUSH_SECONDS:
                self.flush()
        else:
            self.flush()
            event.save(force_insert=True)
        publish(self.run_id, event.as_dict())
        if type == "done":
            done_signal(self.run_id, str(event.payload.get("status", "")))
        return event

    def flush(self) -> None:
        if self._pending:
            RunEvent.objects.bulk_create(self._pending)
            self._pending = []


def _done_key(run_id: int) -> str:
    return f"agentos:run:{run_id}:done"


def done_signal(run_id: int, status: str) -> None:
    """Wake whoever waits for this run (the non-streaming run endpoint) without polling."""
    try:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline()
        pipe.lpush(_done_key(run_id), status)
        pipe.expire(_done_key(run_id), 300)
        pipe.execute()
    except Exception:
        logger.warning("could not signal the end of run %s", run_id, exc_info=True)


_async_redis: dict[int, Any] = {}


async def wait_done(run_id: int, timeout: float) -> str | None:
    """Block (asynchronously) until the run is done or the timeout passes. Returns its status or None."""
    import asyncio

    import redis.asyncio as aioredis

    loop_id = id(asyncio.get_running_loop())
    client = _async_redis.get(loop_id)
    if client is None:
        client = _async_redis[loop_id] = aioredis.Redis.from_url(settings.REDIS_URL)
    result = await client.brpoplpush(_done_key(run_id), _done_key(run_id), timeout=max(0.01, timeout))
    return result.decode() if result else None


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
