"""`/ws/workflow-runs/<id>/?after=<seq>`: a workflow run's events, replayed from the table, then live.

The socket only notifies; the database is the record. Sequence numbers make it exact: nothing is
sent twice and a gap is filled from `WorkflowRunEvent` before anything later goes out.

`?format=json` sends each event as JSON (the builder's test run lights its nodes with them). Without
it, each event is rendered as htmx-ws out-of-band fragments for the run page: the step's row as it is
now in the database (so a repeat is harmless) and, for run-level events, the run's summary.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from accounts.models import Role, role_at_least
from workflows.events import run_group
from workflows.models import StepRun, WorkflowRun, WorkflowRunEvent

GAP_RETRIES = 4
GAP_WAIT_SECONDS = 0.06
REPLAY_BATCH = 2000
STEP_EVENTS = frozenset(
    {"step_started", "step_succeeded", "step_failed", "step_waiting", "step_retry", "step_cancelled", "log"}
)


class WorkflowRunConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        self.user = user
        run = await self._load_run(user.pk)
        if run is None:
            await self.close(code=4404)  # unknown, or another organization's: indistinguishable
            return
        self.graph = run.version.graph
        self.can_write = await self._can_write(run)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.json_mode = query.get("format", [""])[0] == "json"
        try:
            self.last_sent = max(0, int(query.get("after", ["0"])[0]))
        except ValueError:
            self.last_sent = 0
        self.lock = asyncio.Lock()
        self.group = run_group(self.run_id)
        # Join first, then replay: anything published meanwhile arrives live and is deduplicated.
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

    async def workflow_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        async with self.lock:
            seq = int(event["seq"])
            if seq <= self.last_sent:
                return
            if seq > self.last_sent + 1:
                await self._send_from_table(until=seq - 1)
            if seq > self.last_sent + 1:
                # Still a hole after the retries (a writer that never committed): skip it rather than
                # hold back everything after it, `done` included.
                for missed in await self._events_after(self.last_sent, seq - 1):
                    await self._send(missed)
            await self._send(event)

    async def _send_from_table(self, until: int | None = None) -> None:
        if until is None:
            # Everything after `last_sent`, in batches: a long run has many events.
            while not self.closed:
                before = self.last_sent
                events = await self._events_after(before, None)
                await self._send_contiguous(events)
                if len(events) < REPLAY_BATCH or self.last_sent == before:
                    return
            return
        for _attempt in range(GAP_RETRIES):
            await self._send_contiguous(await self._events_after(self.last_sent, until))
            if self.last_sent >= until or self.closed:
                return
            await asyncio.sleep(GAP_WAIT_SECONDS)  # a parallel writer's row may not be committed yet

    async def _send_contiguous(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event["seq"] == self.last_sent + 1:
                await self._send(event)

    @property
    def closed(self) -> bool:
        return getattr(self, "_done", False)

    async def _send(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        self.last_sent = int(event["seq"])
        if self.json_mode:
            await self.send(text_data=json.dumps(event))
        else:
            html = await self._render(event)
            if html.strip():
                await self.send(text_data=html)
        if event["type"] == "done":
            self._done = True
            await self.close(code=1000)

    @database_sync_to_async
    def _load_run(self, user_id: int) -> WorkflowRun | None:
        return (
            WorkflowRun.objects.filter(pk=self.run_id, organization__memberships__user_id=user_id)
            .select_related("version", "organization")
            .first()
        )

    @database_sync_to_async
    def _can_write(self, run: WorkflowRun) -> bool:
        role = run.organization.role_of(self.user)
        return bool(role and role_at_least(role, Role.MEMBER))

    @database_sync_to_async
    def _events_after(self, after: int, until: int | None) -> list[dict[str, Any]]:
        qs = WorkflowRunEvent.objects.filter(run_id=self.run_id, seq__gt=after)
        if until is not None:
            qs = qs.filter(seq__lte=until)
        return [e.as_dict() for e in qs.order_by("seq")[:REPLAY_BATCH]]

    @database_sync_to_async
    def _render(self, event: dict[str, Any]) -> str:
        from workflows.views.runs import node_info, step_context

        context: dict[str, Any] = {
            "event": event,
            "run_id": self.run_id,
            "oob": True,
            "can_write": self.can_write,
        }
        if event["type"] in STEP_EVENTS and event.get("step"):
            step = (
                StepRun.objects.select_related("approval")
                .filter(pk=event["step"], run_id=self.run_id)
                .first()
            )
            if step is not None:
                context.update(step_context(step, node_info(self.graph), self.user))
        if event["type"] in ("run", "done", "step_waiting"):
            context["run"] = WorkflowRun.objects.select_related("workflow", "version", "user").get(
                pk=self.run_id
            )
        return render_to_string("workflows/_run_event.html", context)
