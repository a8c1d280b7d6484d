"""What a run brings to the model besides its input: history, context entries, memories; and the
rebuilt agno state when a paused run resumes."""

from __future__ import annotations

from typing import Any

from agno.models.message import Message as AgnoMessage
from agno.run.agent import RunOutput
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, QuerySet
from django.db.models.functions import JSONObject

from agents.models import AgentContextEntry, AgentMemory, AgentRun, Message

HISTORY_LIMIT = 20


def with_context(runs: QuerySet[AgentRun]) -> QuerySet[AgentRun]:
    """The run query, carrying what the run reads besides itself (its session's history and its
    agent's context entries) as arrays: one round trip for all of it. `history_messages` and
    `extra_context` read them from a run loaded this way."""
    history = (
        Message.objects.filter(
            session_id=OuterRef("session_id"), role__in=[Message.Role.USER, Message.Role.ASSISTANT]
        )
        .exclude(run_id=OuterRef("pk"), role=Message.Role.USER)
        .order_by("-created_at", "-id")
        .values(entry=JSONObject(role="role", content="content"))[:HISTORY_LIMIT]
    )
    entries = (
        AgentContextEntry.objects.filter(agent_id=OuterRef("agent_id"))
        .order_by("key")
        .values(entry=JSONObject(key="key", value="value"))
    )
    return runs.annotate(history_rows=ArraySubquery(history), context_rows=ArraySubquery(entries))


def history_messages(run: AgentRun) -> list[AgnoMessage]:
    if run.session_id is None:
        return []
    rows = run.history_rows  # type: ignore[attr-defined]  # with_context
    return [AgnoMessage(role=r["role"], content=r["content"]) for r in reversed(rows) if r["content"]]


def extra_context(run: AgentRun, memory_enabled: bool, memory_limit: int) -> str:
    parts = []
    entries = run.context_rows  # type: ignore[attr-defined]  # with_context
    if entries:
        parts.append("Context:\n" + "\n".join(f"- {e['key']}: {e['value']}" for e in entries))
    if memory_enabled and run.user_id:
        facts = list(
            AgentMemory.objects.filter(agent_id=run.agent_id, user_id=run.user_id).values_list(
                "content", flat=True
            )[:memory_limit]
        )
        if facts:
            parts.append("What you remember about this user:\n" + "\n".join(f"- {f}" for f in facts))
    return "\n\n".join(parts)


def approved_output(state: dict[str, Any]) -> RunOutput:
    """Rebuild the paused agno run and apply the person's decision to every waiting tool call."""
    output = RunOutput.from_dict({k: v for k, v in state.items() if k != "decision"})
    decision = state.get("decision") or {}
    approved = bool(decision.get("approved"))
    for requirement in output.active_requirements or []:
        if approved:
            requirement.confirm()
        else:
            requirement.reject(note=decision.get("note") or "The user declined this tool call.")
    for tool in output.tools or []:
        if tool.requires_confirmation and tool.confirmed is None:
            tool.confirmed = approved
            if not approved:
                tool.confirmation_note = decision.get("note") or "The user declined this tool call."
    return output
