"""A run's events as Server-Sent Events: replay from the table, then live from the channel group `run.<id>`.

The same rules as the websocket consumer: the table is the record and the group only notifies. We join
the group first, then read the table, and send strictly in sequence: a live notice that arrives ahead
of a gap is held until the table fills the gap (token deltas reach the table in small batches).
A long run is read in batches one after the other, and once `done` (written last) is there, a gap the
table still has is for good and is passed over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

from agents.models import RunEvent
from agents.runtime.events import run_group

logger = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15.0
GAP_POLL_SECONDS = 0.02
STREAM_MAX_SECONDS = 3600.0
BATCH = 500


class EventStreamRenderer(BaseRenderer):
    """Lets `Accept: text/event-stream` through content negotiation. Streams are sent as
    StreamingHttpResponse; only errors are rendered here, as one `error` event."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return sse_message("error", data).encode()


def sse_message(event: str, data: Any, id: int | None = None) -> str:
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _format(event: dict[str, Any]) -> bytes:
    return sse_message(event["type"], event, id=event["seq"]).encode()


@sync_to_async
def _events_after(run_id: int, after: int) -> list[dict[str, Any]]:
    return [
        e.as_dict() for e in RunEvent.objects.filter(run_id=run_id, seq__gt=after).order_by("seq")[:BATCH]
    ]


@sync_to_async
def _finished(run_id: int) -> bool:
    return RunEvent.objects.filter(run_id=run_id, type="done").exists()


def _has_done(held: dict[int, dict[str, Any]]) -> bool:
    return any(e["type"] == "done" for e in held.values())


async def _receive(layer: Any, channel: str | None, timeout: float) -> list[dict[str, Any]]:
    """The events of the next notice: one ("run.event") or several sent together ("run.events")."""
    if layer is None or channel is None:
        await asyncio.sleep(min(timeout, GAP_POLL_SECONDS))
        return []
    try:
        message = await asyncio.wait_for(layer.receive(channel), timeout=timeout)
    except TimeoutError:
        return []
    if not isinstance(message, dict):
        return []
    events = message.get("events") if "events" in message else [message.get("event")]
    if not isinstance(events, list):
        return []
    return [e for e in events if isinstance(e, dict) and isinstance(e.get("seq"), int)]


async def run_event_stream(run_id: int, after: int = 0, prelude: str = "") -> AsyncIterator[bytes]:
    """Every event after `after`, in order, without gaps or repeats, ending after `done`."""
    if prelude:
        yield prelude.encode()
    layer = get_channel_layer()
    channel = group = None
    if layer is not None:
        channel, group = await layer.new_channel("sse"), run_group(run_id)
        await layer.group_add(group, channel)
    last = after
    held: dict[int, dict[str, Any]] = {}
    need_table = True
    started = last_output = time.monotonic()
    try:
        while time.monotonic() - started < STREAM_MAX_SECONDS:
            table_read, more = need_table, False
            if need_table:
                rows = await _events_after(run_id, last)
                for event in rows:
                    held.setdefault(event["seq"], event)
                need_table = False
                more = len(rows) == BATCH  # a long run: read on at once rather than wait for a notice
            while last + 1 in held:
                event = held.pop(last + 1)
                last = event["seq"]
                last_output = time.monotonic()
                yield _format(event)
                if event["type"] == "done":
                    return
            held = {seq: e for seq, e in held.items() if seq > last}
            if held and table_read and (_has_done(held) or (more and await _finished(run_id))):
                last = min(held) - 1  # `done` is written last: a gap the table still has is for good
                need_table = more
                continue
            if more and not held:
                need_table = True
                continue
            if held or layer is None:
                need_table = True  # something is missing: read the table again soon
            notices = await _receive(layer, channel, GAP_POLL_SECONDS if need_table else KEEPALIVE_SECONDS)
            if not notices:
                need_table = True  # quiet: a notice may have been dropped, so resync from the table
                if time.monotonic() - last_output >= KEEPALIVE_SECONDS:
                    last_output = time.monotonic()
                    yield b": keepalive\n\n"
                continue
            for notice in notices:
                if notice["seq"] > last:
                    held[notice["seq"]] = notice
            if min(held, default=last + 1) > last + 1:
                need_table = True
    finally:
        if layer is not None and group is not None:
            try:
                await layer.group_discard(group, channel)
            except Exception:  # the client is gone; the group entry expires on its own
                logger.debug("could not leave %s", group, exc_info=True)


def sse_response(run_id: int, after: int = 0, prelude: str = "") -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        run_event_stream(run_id, after, prelude), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must pass each event on at once
    return response
