"""`/ws/runs/<id>/?after=<seq>`: an agent run's events, replayed from the table, then live.

The replay, deduplication and gap filling live in `config.consumers.SequencedEventsConsumer`; this
socket says which runs a user may open and renders each event for the chat page (or sends JSON with
`?format=json`).
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from agents.models import AgentRun, RunEvent
from agents.runtime.events import run_group
from config.consumers import SequencedEventsConsumer


class RunConsumer(SequencedEventsConsumer):
    event_model = RunEvent
    # One worker writes a run's events in order; token deltas reach the table in batches, so a gap
    # only means "not flushed yet" until `done`, which is written after everything else.
    skip_unfilled_gaps = False

    def group_for(self, run_id: int) -> str:
        return run_group(run_id)

    @database_sync_to_async
    def load(self, user: Any) -> AgentRun | None:
        return (
            AgentRun.objects.filter(pk=self.run_id, organization__memberships__user_id=user.pk)
            .select_related("agent")
            .first()
        )

    async def run_event(self, message: dict[str, Any]) -> None:
        await self.deliver(message["event"])

    run_events = SequencedEventsConsumer.deliver_each

    @database_sync_to_async
    def render(self, event: dict[str, Any]) -> str:
        return render_to_string("agents/_run_event.html", {"event": event, "run_id": self.run_id})
