"""What a run brings to the model besides its input: history, context entries, memories; and the
rebuilt agno state when a paused run resumes."""

from __future__ import annotations

from typing import Any

from agno.models.message import Message as AgnoMessage
from agno.run.agent import RunOutput

from agents.models import AgentMemory, AgentRun, Message

HISTORY_LIMIT = 20


def history_messages(run: AgentRun) -> list[AgnoMessage]:
    if run.session_id is None:
        return []
    rows = list(
        Message.objects.filter(
            session_id=run.session_id, role__in=[Message.Role.USER, Message.Role.ASSISTANT]
        )
        .exclude(run_id=run.pk, role=Message.Role.USER)
        .order_by("-created_at", "-id")
        .values_list("role", "content")[:HISTORY_LIMIT]
    )
    return [AgnoMessage(role=role, content=content) for role, content in reversed(rows) if content]


def extra_context(run: AgentRun, memory_enabled: bool, memory_limit: int) -> str:
    parts = []
    entries = list(run.agent.context_entries.values_list("key", "value"))
    if entries:
        parts.append("Context:\n" + "\n".join(f"- {k}: {v}" for k, v in entries))
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
