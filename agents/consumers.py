"""`/ws/runs/<id>/?after=<seq>`: replay what the client missed from the table, then stream live.

The socket only notifies; the database is the record. Sequence numbers make it exact: nothing is
sent twice and a gap is filled from the table before anything later goes out.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from agents.models import AgentRun, RunEvent
from agents.runtime.events import run_group

GAP_RETRIES = 4
GAP_WAIT_SECONDS = 0.06


class RunConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        run = await self._load_run(user.pk)
        if run is None:
            await self.close(code=4404)  # unknown, or another organization's: indistinguishable
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.json_mode = query.get("format", [""])[0] == "json"
        try:
            self.last_sent = max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            self.last_sent = 0
        self.user_id = user.pk
        self.lock = asyncio.Lock()
        self.group = run_group(self.run_id)
        # Join first, then replay: anything published meanwhile arrives live and is deduplicated.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send_from_table()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Clients only listen here; cancel and approvals go through HTTP so they are authorized there.
        return

    async def run_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        async with self.lock:
            seq = int(event["seq"])
            if seq <= self.last_sent:
                return
            if seq > self.last_sent + 1:
                await self._send_from_table(until=seq - 1)
            if seq == self.last_sent + 1:
                await self._send(event)

    async def _send_from_table(self, until: int | None = None) -> None:
        for _attempt in range(GAP_RETRIES if until else 1):
            events = await self._events_after(self.last_sent, until)
            for event in events:
                if event["seq"] == self.last_sent + 1:
                    await self._send(event)
            if until is None or self.last_sent >= until:
                return
            await asyncio.sleep(GAP_WAIT_SECONDS)  # the writer flushes deltas in small batches

    async def _send(self, event: dict[str, Any]) -> None:
        self.last_sent = int(event["seq"])
        if self.json_mode:
            await self.send(text_data=json.dumps(event))
        else:
            html = await self._render(event)
            if html.strip():
                await self.send(text_data=html)
        if event["type"] == "done":
            await self.close(code=1000)

    @database_sync_to_async
    def _load_run(self, user_id: int) -> AgentRun | None:
        return (
            AgentRun.objects.filter(pk=self.run_id, organization__memberships__user_id=user_id)
            .select_related("agent")
            .first()
        )

    @database_sync_to_async
    def _events_after(self, after: int, until: int | None) -> list[dict[str, Any]]:
        qs = RunEvent.objects.filter(run_id=self.run_id, seq__gt=after)
        if until is not None:
            qs = qs.filter(seq__lte=until)
        return [e.as_dict() for e in qs.order_by("seq")[:2000]]

    @database_sync_to_async
    def _render(self, event: dict[str, Any]) -> str:
        return render_to_string("agents/_run_event.html", {"event": event, "run_id": self.run_id})
