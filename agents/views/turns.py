"""A chat turn, as the page draws it: the user's input, then the reply, its steps and notes.

An unfinished run is drawn "live": the text streamed so far (the delta events joined) and the last
sequence number already drawn, so the websocket resumes exactly after it (survives a reload).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from agents.models import AgentRun, Message, RunEvent

STEP_TYPES = ("tool_call", "tool_result", "handoff", "guardrail", "error", "approval", "done")


@dataclass
class Turn:
    run: AgentRun
    reply: Message | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    live: bool = False
    text: str = ""
    after: int = 0


def _collect(turn: Turn, events: list[RunEvent]) -> bool:
    """Fill steps, notes and live text from the run's events. Returns True if `done` is among them."""
    steps: dict[str, dict[str, Any]] = {}
    done = False
    texts = []
    for event in events:
        p = event.payload
        turn.after = max(turn.after, event.seq)
        if event.type == "delta":
            texts.append(str(p.get("text", "")))
        elif event.type == "tool_call":
            steps[str(p.get("id"))] = {
                "kind": "tool",
                "name": p.get("name"),
                "args": p.get("args"),
                "result": None,
            }
        elif event.type == "handoff":
            steps[str(p.get("id"))] = {
                "kind": "handoff",
                "to": p.get("to"),
                "task": p.get("task"),
                "result": None,
            }
        elif event.type == "tool_result":
            step = steps.setdefault(str(p.get("id")), {"kind": "tool", "name": p.get("name"), "args": None})
            step.update(result=p.get("result", ""), error=bool(p.get("error")))
        elif event.type in ("guardrail", "approval") or (event.type == "error" and not p.get("final")):
            turn.notes.append({"type": event.type, **p})
        elif event.type == "done":
            done = True
    turn.steps = [{"id": k, **v} for k, v in steps.items()]
    turn.text = "".join(texts)
    return done


def turns_for(runs: list[AgentRun]) -> list[Turn]:
    if not runs:
        return []
    ids = [r.pk for r in runs]
    unfinished = [r.pk for r in runs if not r.is_finished]
    events = (
        RunEvent.objects.filter(run_id__in=ids)
        .filter(Q(type__in=STEP_TYPES) | Q(run_id__in=unfinished))
        .order_by("run_id", "seq")
    )
    by_run: dict[int, list[RunEvent]] = {}
    for event in events:
        by_run.setdefault(event.run_id, []).append(event)
    # Replies are read after the events: a run whose `done` we saw has its message committed already.
    replies = {m.run_id: m for m in Message.objects.filter(run_id__in=ids, role=Message.Role.ASSISTANT)}
    turns = []
    for run in runs:
        turn = Turn(run=run, reply=replies.get(run.pk))
        done = _collect(turn, by_run.get(run.pk, []))
        if not run.is_finished and done:
            run.refresh_from_db()
        turn.live = not run.is_finished and not done
        turns.append(turn)
    return turns


def turn_for(run: AgentRun) -> Turn:
    return turns_for([run])[0]


def session_runs(session_id: int, limit: int = 50) -> list[AgentRun]:
    runs = list(AgentRun.objects.filter(session_id=session_id).order_by("-created_at", "-pk")[:limit])
    runs.reverse()
    return runs
