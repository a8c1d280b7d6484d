"""`/ws/workflow-runs/<id>/?after=<seq>`: a workflow run's events, replayed from the table, then live.

The replay, deduplication and gap filling live in `config.consumers.SequencedEventsConsumer`
(sequence numbers make it exact: nothing is sent twice, a gap is filled from `WorkflowRunEvent`).

`?format=json` sends each event as JSON (the builder's test run lights its nodes with them). Without
it, each event is rendered as htmx-ws out-of-band fragments for the run page: the step's row as it is
now in the database (so a repeat is harmless) and, for run-level events, the run's summary.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.template.loader import render_to_string

from accounts.models import Role, role_at_least
from config.consumers import SequencedEventsConsumer
from workflows.events import run_group
from workflows.models import StepRun, WorkflowRun, WorkflowRunEvent

STEP_EVENTS = frozenset(
    {"step_started", "step_succeeded", "step_failed", "step_waiting", "step_retry", "step_cancelled", "log"}
)


class WorkflowRunConsumer(SequencedEventsConsumer):
    event_model = WorkflowRunEvent

    def group_for(self, run_id: int) -> str:
        return run_group(run_id)

    @database_sync_to_async
    def load(self, user: Any) -> WorkflowRun | None:
        run = (
            WorkflowRun.objects.filter(pk=self.run_id, organization__memberships__user_id=user.pk)
            .select_related("version", "organization")
            .first()
        )
        if run is not None:
            self.graph = run.version.graph
            role = run.organization.role_of(user)
            self.can_write = bool(role and role_at_least(role, Role.MEMBER))
        return run

    async def workflow_event(self, message: dict[str, Any]) -> None:
        await self.deliver(message["event"])

    workflow_events = SequencedEventsConsumer.deliver_each

    @database_sync_to_async
    def render(self, event: dict[str, Any]) -> str:
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
