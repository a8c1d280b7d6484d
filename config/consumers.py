"""The replay-then-live websocket both run sockets share (`/ws/runs/<id>/`, `/ws/workflow-runs/<id>/`).

The socket only notifies; the database is the record. Each run's events carry sequence numbers, so
the consumer is exact:
- on connect it joins the run's group first, then replays the table after `?after=` in batches, so
  anything published meanwhile arrives live and is deduplicated;
- nothing is sent twice, and a gap in the live stream is filled from the table before anything later
  goes out;
- a number that never shows up (its writer died before committing) does not hold back what follows
  it: `done` always gets through, and sockets whose gaps can be for good (`skip_unfilled_gaps`)
  move past one after a few short retries;
- the socket closes after `done`.

`?format=json` sends each event as JSON; without it, subclasses render HTML fragments for htmx-ws.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db.models import Model

GAP_RETRIES = 4
GAP_WAIT_SECONDS = 0.06  # writers flush in small batches; parallel writers commit out of order
REPLAY_BATCH = 2000


class SequencedEventsConsumer(AsyncWebsocketConsumer):
    """Subclasses set `event_model` (rows with `run_id`, `seq` and `as_dict()`) and implement `load`
    (the run, if this user may see it), `group_for` and `render`; their channel-layer handler calls
    `deliver(message["event"])`."""

    event_model: type[Model]
    # After the retries, move past a gap that stays (parallel writers commit out of order, and a
    # number can stay unused). False: a live event behind a gap waits for a later notice instead,
    # for runs whose single writer fills every gap, only late (batched token deltas).
    skip_unfilled_gaps = True

    async def load(self, user: Any) -> Any | None:
        raise NotImplementedError

    def group_for(self, run_id: int) -> str:
        raise NotImplementedError

    async def render(self, event: dict[str, Any]) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------ lifecycle

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        self.user = user
        if await self.load(user) is None:
            await self.close(code=4404)  # unknown, or another organization's: indistinguishable
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.json_mode = query.get("format", [""])[0] == "json"
        try:
            self.last_sent = max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            self.last_sent = 0
        self.lock = asyncio.Lock()
        self.group = self.group_for(self.run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        async with self.lock:
            await self._send_from_table()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Clients only listen here; cancel and approvals go through HTTP so they are authorized there.
        return

    # ---------------------------------------------------------------- events

    async def deliver_each(self, message: dict[str, Any]) -> None:
        """A `*.events` message: notices the worker's publisher sent together (events.coalesce)."""
        for event in message["events"]:
            await self.deliver(event)

    async def deliver(self, event: dict[str, Any]) -> None:
        async with self.lock:
            # After `done` nothing more is written, so a hole before it is for good.
            await self._catch_up_to(event, skip=self.skip_unfilled_gaps or event["type"] == "done")

    async def _catch_up_to(self, event: dict[str, Any], *, skip: bool) -> None:
        """Send `event` once everything before it is sent. A gap is filled from the table (with a few
        short retries); if it stays, `skip` moves past it, else the event waits for a later notice."""
        seq = int(event["seq"])
        if seq <= self.last_sent:
            return
        if seq > self.last_sent + 1:
            await self._send_from_table(until=seq - 1)
        if seq > self.last_sent + 1:
            if not skip:
                return  # the missing rows are still on their way: the next notice tries again
            for missed in await self._events_after(self.last_sent, seq - 1):
                await self._send(missed)
        await self._send(event)

    @property
    def closed(self) -> bool:
        return getattr(self, "_done", False)

    async def _send_from_table(self, until: int | None = None) -> None:
        if until is None:
            # Everything after `last_sent`, in batches: a long run has many events.
            while not self.closed:
                events = await self._events_after(self.last_sent, None)
                await self._send_contiguous(events)
                pending = [e for e in events if e["seq"] > self.last_sent]
                if not pending:
                    if len(events) < REPLAY_BATCH:
                        return
                    continue
                full = len(events) == REPLAY_BATCH
                finished = any(e["type"] == "done" for e in pending)
                if not (finished or (full and (self.skip_unfilled_gaps or await self._finished()))):
                    return  # a hole in a live run: the missing row's notice, or a later one, fills it
                # A finished run (or a long backlog) behind a hole: wait briefly, then move past it.
                before = self.last_sent
                await self._catch_up_to(pending[0], skip=True)
                if self.last_sent == before:
                    return
            return
        for _attempt in range(GAP_RETRIES):
            await self._send_contiguous(await self._events_after(self.last_sent, until))
            if self.last_sent >= until or self.closed:
                return
            await asyncio.sleep(GAP_WAIT_SECONDS)  # the missing row may not be committed yet

    async def _send_contiguous(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event["seq"] == self.last_sent + 1:
                await self._send(event)

    async def _send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        self.last_sent = int(event["seq"])
        if self.json_mode:
            await self.send(text_data=json.dumps(event))
        else:
            html = await self.render(event)
            if html.strip():
                await self.send(text_data=html)
        if event["type"] == "done":
            self._done = True
            await self.close(code=1000)

    @database_sync_to_async
    def _finished(self) -> bool:
        return self.event_model._default_manager.filter(run_id=self.run_id, type="done").exists()

    @database_sync_to_async
    def _events_after(self, after: int, until: int | None) -> list[dict[str, Any]]:
        qs = self.event_model._default_manager.filter(run_id=self.run_id, seq__gt=after)
        if until is not None:
            qs = qs.filter(seq__lte=until)
        return [e.as_dict() for e in qs.order_by("seq")[:REPLAY_BATCH]]  # type: ignore[attr-defined]
