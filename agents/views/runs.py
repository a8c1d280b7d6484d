"""The Runs tab and one run's detail: input, output, error, and a trace tree with timing and cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404
from django.template.response import TemplateResponse

from accounts.decorators import org_role_required
from accounts.types import AuthedHttpRequest
from agents.models import AgentRun, RunEvent
from agents.views.common import agent_or_404, agent_page


@org_role_required()
def runs_tab(request: AuthedHttpRequest, agent_id: int) -> TemplateResponse:
    agent = agent_or_404(request, agent_id)
    runs = AgentRun.objects.for_org(request.org).filter(agent=agent).select_related("user", "version")
    status = request.GET.get("status", "")
    if status in AgentRun.Status.values:
        runs = runs.filter(status=status)
    page = Paginator(runs.order_by("-created_at", "-pk"), 25).get_page(request.GET.get("page"))
    return agent_page(
        request,
        agent,
        "runs",
        "agents/runs.html",
        {"page": page, "status": status, "statuses": AgentRun.Status.choices},
    )


def _offset_ms(run: AgentRun, event: RunEvent) -> int:
    start = run.started_at or run.created_at
    return max(0, int((event.created_at - start).total_seconds() * 1000))


def trace_tree(run: AgentRun, events: list[RunEvent]) -> list[dict[str, Any]]:
    """Model calls at the top, each with the tool calls and handoffs it asked for beneath it;
    guardrail trips and errors where they happened. Timings are ms since the run started."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e.type in ("tool_call", "handoff"):
            calls.setdefault(str(e.payload.get("name") or "delegate_task_to_member"), []).append(e.payload)
        elif e.type == "tool_result":
            for pending in calls.get(str(e.payload.get("name")), []):
                if pending.get("id") == e.payload.get("id"):
                    pending["result"] = e.payload.get("result")
    starts = [
        int(e.payload.get("at_ms", 0))
        for e in events
        if e.type == "model" and e.payload.get("phase") == "start"
    ]
    cursor = starts[0] if starts else 0
    nodes: list[dict[str, Any]] = []
    entries = sorted(
        run.trace or [], key=lambda t: (t.get("start_ms", t.get("end_ms", 0)), t.get("end_ms", 0))
    )
    used: dict[str, int] = {}
    for entry in entries:
        end = int(entry.get("end_ms", 0))
        if entry.get("type") == "model":
            node = {
                "kind": "model",
                "label": entry.get("name", "model"),
                "start": cursor,
                "end": end,
                "input_tokens": entry.get("input_tokens", 0),
                "output_tokens": entry.get("output_tokens", 0),
                "cost": Decimal(str(entry.get("cost", "0"))),
                "children": [],
            }
            cursor = end
            nodes.append(node)
            continue
        name = str(entry.get("name", ""))
        index = used.get(name, 0)
        used[name] = index + 1
        detail = (calls.get(name) or [{}])[index] if index < len(calls.get(name) or []) else {}
        child = {
            "kind": entry.get("type", "tool"),
            "label": f"handoff → {detail.get('to', '?')}" if entry.get("type") == "handoff" else name,
            "start": int(entry.get("start_ms", 0)),
            "end": end,
            "error": entry.get("error", False),
            "args": detail.get("args") if "args" in detail else detail.get("task"),
            "result": detail.get("result"),
            "children": [],
        }
        cursor = max(cursor, end)
        parent = next(
            (n for n in reversed(nodes) if n["kind"] == "model" and n["end"] <= child["start"]), None
        )
        (parent["children"] if parent else nodes).append(child)
    for e in events:
        if e.type == "guardrail" or (e.type == "error" and not e.payload.get("final")):
            at = _offset_ms(run, e)
            label = (
                f"{e.payload.get('stage', '')} guardrail: {e.payload.get('rule', '')}"
                if e.type == "guardrail"
                else "model error"
            )
            nodes.append(
                {
                    "kind": e.type,
                    "label": label,
                    "start": at,
                    "end": at,
                    "message": e.payload.get("message"),
                    "children": [],
                }
            )
    nodes.sort(key=lambda n: n["start"])
    for node in nodes:
        node["duration"] = max(0, node["end"] - node["start"])
        for child in node["children"]:
            child["duration"] = max(0, child["end"] - child["start"])
    return nodes


def _chart(nodes: list[dict[str, Any]]) -> dict[str, list[Any]]:
    labels, durations, kinds = [], [], []
    for node in nodes:
        for item in [node, *node["children"]]:
            if item["kind"] in ("model", "tool", "handoff"):
                labels.append(item["label"][:40])
                durations.append(item["duration"])
                kinds.append(item["kind"])
    return {"labels": labels, "durations": durations, "kinds": kinds}


@org_role_required()
def run_detail(request: AuthedHttpRequest, agent_id: int, run_id: int) -> TemplateResponse:
    agent = agent_or_404(request, agent_id)
    run = (
        AgentRun.objects.for_org(request.org)
        .filter(agent=agent, pk=run_id)
        .select_related("user", "version", "session")
        .first()
    )
    if run is None:
        raise Http404("No such run.")
    events = list(run.events.exclude(type="delta").order_by("seq"))
    tree = trace_tree(run, events)
    return agent_page(
        request,
        agent,
        "runs",
        "agents/run_detail.html",
        {
            "run": run,
            "events": events,
            "tree": tree,
            "chart": _chart(tree),
            "delta_count": run.events.filter(type="delta").count(),
            "task": run.agent.tasks.filter(run=run).first(),
        },
    )
