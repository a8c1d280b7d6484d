"""Run events: every step is a RunEvent row with a sequence number, then a notice on `run.<id>`.

The database is the record. The channel message carries the event itself so live clients need no
query, and clients that missed some replay them from the table by sequence number.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from agents.models import RunEvent
from config import prepared

logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


class _Publisher:
    """Sends channel-layer messages from sync code through one background thread per process.

    A FIFO queue keeps sends in order, and the worker never waits on the fan-out. The thread sends
    with the layer's blocking group send (`config.channel_layer`: synchronous Redis, one or two Lua
    calls a message); a layer without one (another backend) is driven through a private event loop.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.queue: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self.sending = threading.Lock()  # held while a batch is taken and sent
        threading.Thread(target=self._run, name="run-event-publisher", daemon=True).start()

    def _run(self) -> None:
        layer = get_channel_layer()
        blocking = getattr(layer, "group_send_blocking", None)
        loop = None if blocking is not None or layer is None else asyncio.new_event_loop()
        while True:
            first = self.queue.get()
            with self.sending:
                batch = [first]
                while True:  # whatever else is already waiting goes out with it
                    try:
                        batch.append(self.queue.get_nowait())
                    except queue.Empty:
                        break
                for group, message in coalesce(batch):
                    try:
                        if blocking is not None:
                            blocking(group, message)
                        elif loop is not None:
                            loop.run_until_complete(layer.group_send(group, message))  # type: ignore[union-attr]
                    except Exception:
                        # A lost notice is harmless: sockets resync from the table.
                        logger.warning("could not publish to %s", group, exc_info=True)

    def send(self, group: str, message: dict[str, Any]) -> None:
        self.queue.put((group, message))


# Event notices that may travel together: a group's waiting notices of one of these types become one
# message of the plural type, {"type": "run.events", "events": [...]}, in their order.
BATCHABLE = {"run.event": "run.events", "workflow.event": "workflow.events"}
_SINGULAR = {plural: singular for singular, plural in BATCHABLE.items()}


def coalesce(batch: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One channel-layer send per group for the event notices waiting at the same moment (a group
    send costs the same for one event as for ten); other messages pass as they are. Each group's
    messages keep their order."""
    if len(batch) == 1:
        return batch
    out: list[tuple[str, dict[str, Any]]] = []
    open_batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for group, message in batch:
        plural = BATCHABLE.get(message.get("type", ""))
        if plural is None:
            out.append((group, message))
            open_batches = {k: v for k, v in open_batches.items() if k[0] != group}  # keep order
            continue
        events = open_batches.get((group, plural))
        if events is None:
            events = open_batches[(group, plural)] = []
            out.append((group, {"type": plural, "events": events}))
        events.append(message["event"])
    return [(group, _single(m)) for group, m in out]


def _single(message: dict[str, Any]) -> dict[str, Any]:
    """A batch of one goes out in the singular form, as it did before batching."""
    events, singular = message.get("events"), _SINGULAR.get(message.get("type", ""))
    if singular is not None and isinstance(events, list) and len(events) == 1:
        return {"type": singular, "event": events[0]}
    return message


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _get_publisher() -> _Publisher:
    global _publisher
    if _publisher is None or _publisher.pid != os.getpid():  # a forked worker needs its own thread
        with _publisher_lock:
            if _publisher is None or _publisher.pid != os.getpid():
                _publisher = _Publisher()
    return _publisher


def publish(run_id: int, event: dict[str, Any]) -> None:
    _get_publisher().send(run_group(run_id), {"type": "run.event", "event": event})


# Frequent or informational events are written in batches; the rest are written before they are sent.
BATCHED_TYPES = frozenset({"delta", "status", "model"})


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
        self.result: dict[str, Any] | None = None  # the run's final fields, handed to waiters with "done"
        self._pending: list[RunEvent] = []
        self._oldest = 0.0
        self.signalled = False  # the done signal went out, and cleared the run's cancel flag with it
        self.holding = False  # `held`

    def _next(self, type: str, payload: dict[str, Any] | None) -> RunEvent:
        self.seq += 1
        return RunEvent(
            run_id=self.run_id, seq=self.seq, type=type, payload=payload or {}, created_at=timezone.now()
        )

    def emit(self, type: str, payload: dict[str, Any] | None = None) -> RunEvent:
        event = self._next(type, payload)
        if self.holding:
            self._pending.append(event)
        elif type in BATCHED_TYPES:
            if not self._pending:
                self._oldest = time.monotonic()
            self._pending.append(event)
            if time.monotonic() - self._oldest >= self.FLUSH_SECONDS:
                self.flush()
        else:
            self.flush()
            prepared.insert([event])
        self.announce(event)
        return event

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Events emitted in it are sent at once, and their rows wait for the next flush: for the
        events of a run's end, written with its final transaction's COMMIT (or by `fail`'s flush)."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False

    def stage(self, type: str, payload: dict[str, Any] | None = None) -> RunEvent:
        """Number an event and queue its row for the next flush, without sending it: for an event
        written inside a transaction and announced (`announce`) once that commits."""
        event = self._next(type, payload)
        self._pending.append(event)
        return event

    def announce(self, event: RunEvent) -> None:
        """Send it to live clients; "done" also wakes whoever waits for the run's answer."""
        publish(self.run_id, event.as_dict())
        if event.type == "done":
            self.signalled = done_signal(self.run_id, str(event.payload.get("status", "")), self.result)

    def flush(self, at_commit: bool = False) -> None:
        """Write the pending rows; `at_commit` sends them with the enclosing transaction's COMMIT."""
        if self._pending:
            prepared.insert(self._pending, at_commit=at_commit)
            self._pending = []


def _done_key(run_id: int) -> str:
    return f"agentos:run:{run_id}:done"


def done_signal(run_id: int, status: str, result: dict[str, Any] | None = None) -> bool:
    """Wake whoever waits for this run (the non-streaming run endpoint) without polling. With the
    run's final fields attached, the waiter answers without reading the row back. The run's cancel
    flag, if any, goes in the same round trip: a run that ended or paused has nothing left to cancel.
    False if Redis could not be reached (logged)."""
    import json

    from agents.runtime import cancel

    try:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        pipe = client.pipeline(transaction=False)
        value = json.dumps({"status": status, "run": result}, default=str) if result is not None else status
        pipe.lpush(_done_key(run_id), value)
        pipe.expire(_done_key(run_id), 300)
        pipe.delete(cancel.stored_key(run_id))
        pipe.execute()
    except Exception:
        logger.warning("could not signal the end of run %s", run_id, exc_info=True)
        return False
    return True


# One client per event loop: a client's connections belong to the loop that opened them. Keyed by the
# loop itself (weakly), since an id() is reused once a short-lived loop (async_to_sync) is collected.
_async_redis: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _waiters_client(redis_class: Any) -> Any:
    # One blocking BRPOPLPUSH per waiting request: the pool must hold as many connections as waiters.
    return redis_class.from_url(
        settings.REDIS_URL, max_connections=10_000, socket_timeout=None, socket_connect_timeout=5
    )


async def wait_done(run_id: int, timeout: float) -> str | None:
    """Wait (asynchronously) until the run is done or the timeout passes. Returns the done signal,
    or None after the timeout or if Redis could not be reached (logged: the client polls instead)."""
    import asyncio

    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    client = _async_redis.get(loop)
    if client is None:
        client = _async_redis[loop] = _waiters_client(aioredis.Redis)
    try:
        result = await client.brpoplpush(_done_key(run_id), _done_key(run_id), timeout=max(0.01, timeout))
    except Exception:
        logger.warning("waiting for run %s failed", run_id, exc_info=True)
        return None
    return result.decode() if isinstance(result, bytes) else result


@functools.cache
def _blocking_redis() -> Any:
    import redis

    return _waiters_client(redis.Redis)


def wait_done_blocking(run_id: int, timeout: float) -> str | None:
    """`wait_done` for a thread that may block (WSGI, Django's test client): the same signal and
    answers, on a connection pool of its own."""
    try:
        result = _blocking_redis().brpoplpush(
            _done_key(run_id), _done_key(run_id), timeout=max(0.01, timeout)
        )
    except Exception:
        logger.warning("waiting for run %s failed", run_id, exc_info=True)
        return None
    return result.decode() if isinstance(result, bytes) else result


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
    if type == "done":
        done_signal(run_id, str(event.payload.get("status", "")))
    return event
