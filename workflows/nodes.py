"""Node executors: one function per node type, `(StepContext) -> Result`. They raise NodeError with a
message for people; the engine applies the retry policy and the fail-branch."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from workflows.engine.types import CreditsPaused, NodeError, Result, StepContext, Wait
from workflows.expressions import evaluate, render, render_text

logger = logging.getLogger(__name__)

Executor = Callable[[StepContext], Result]

# Integration actions (later integrations work registers them): (app, action) -> callable(org_id, params) -> output.
_INTEGRATION_ACTIONS: dict[tuple[str, str], Callable[[int, dict[str, Any]], Any]] = {}


def register_integration_action(app: str, action: str, fn: Callable[[int, dict[str, Any]], Any]) -> None:
    _INTEGRATION_ACTIONS[(app, action)] = fn


def integration_action(app: str, action: str) -> Callable[[int, dict[str, Any]], Any] | None:
    return _INTEGRATION_ACTIONS.get((app, action))


# ------------------------------------------------------------------ basics


def trigger(ctx: StepContext) -> Result:
    return Result(output=ctx.run.input)


def transform(ctx: StepContext) -> Result:
    return Result(output=render(ctx.config.get("mapping") or {}, ctx.scope))


def set_variable(ctx: StepContext) -> Result:
    values = render(ctx.config.get("variables") or {}, ctx.scope)
    ctx.log(f"set {', '.join(sorted(values))}")
    return Result(output=values, vars=values)


def end(ctx: StepContext) -> Result:
    template = ctx.config.get("output", "{{ last }}")
    return Result(output=render(template, ctx.scope))


def parallel(ctx: StepContext) -> Result:
    branches = ctx.graph.next_nodes(ctx.step.node_id, "out")
    ctx.log(f"fan out to {len(branches)} branches: {', '.join(branches)}")
    return Result(output=ctx.scope["last"])


def join(ctx: StepContext) -> Result:
    arrived = (ctx.step.input or {}).get("arrived") or {}
    expected = sorted(set(ctx.graph.incoming.get(ctx.step.node_id, [])))
    missing = [n for n in expected if n not in arrived]
    if missing:
        ctx.log(f"went on without {', '.join(missing)} (those branches did not run)")
    return Result(output={"results": [arrived[n] for n in expected if n in arrived], "by_node": arrived})


def condition(ctx: StepContext) -> Result:
    value = bool(evaluate(ctx.config["expression"], ctx.scope))
    ctx.log(f"{ctx.config['expression']} → {value}")
    return Result(output=ctx.scope["last"], port="true" if value else "false")


def switch(ctx: StepContext) -> Result:
    value = evaluate(ctx.config["expression"], ctx.scope)
    text = "" if value is None else str(value)
    cases = [str(c) for c in ctx.config.get("cases") or []]
    port = text if text in cases else next((c for c in cases if c.lower() == text.lower()), "default")
    ctx.log(f"{ctx.config['expression']} = {text!r} → {port}")
    return Result(output=ctx.scope["last"], port=port)


def loop(ctx: StepContext) -> Result:
    cfg, node_id = ctx.config, ctx.step.node_id
    limit = int(cfg["max_iterations"])
    body = ctx.graph.loop_body(node_id)
    state = dict((ctx.scope["loop"] or {}).get(node_id) or {})
    entering = ctx.step.from_node not in body or not state.get("active")
    if entering:
        state = {"active": True, "index": 0, "results": []}
        if cfg.get("mode") == "foreach":
            items = render(cfg["items"], ctx.scope)
            if isinstance(items, str):
                try:
                    items = json.loads(items)
                except ValueError:
                    items = [line for line in items.splitlines() if line.strip()]
            if not isinstance(items, list):
                raise NodeError("The loop's items did not give a list.", retryable=False)
            if len(items) > limit:
                ctx.log(f"{len(items)} items; only the first {limit} (max_iterations) run")
            state["items"] = items[:limit]
    else:
        state["results"] = [*state.get("results", []), ctx.scope["last"]]
        state["index"] = int(state.get("index", 0)) + 1
    index = state["index"]
    if cfg.get("mode") == "foreach":
        items = state.get("items") or []
        more = index < len(items)
        state["item"] = items[index] if more else None
    else:
        more = index < limit and bool(evaluate(cfg["condition"], {**ctx.scope, "index": index}))
        state["item"] = None
        if index >= limit and bool(evaluate(cfg["condition"], {**ctx.scope, "index": index})):
            state["exhausted"] = True
            ctx.log(f"stopped after max_iterations={limit}")
    if more:
        ctx.log(f"iteration {index + 1}")
        return Result(output={"item": state["item"], "index": index}, port="body", loop_state=state)
    state["active"] = False
    ctx.log(f"done after {index} iteration(s)")
    return Result(
        output={"results": state["results"], "iterations": index, "exhausted": bool(state.get("exhausted"))},
        port="done",
        loop_state=state,
    )


def delay(ctx: StepContext) -> Result:
    cfg = ctx.config
    now = timezone.now()
    if cfg.get("until"):
        raw = render_text(cfg["until"], ctx.scope)
        when = parse_datetime(raw.strip())
        if when is None:
            raise NodeError(f"'until' is not a date and time: {raw!r}.", retryable=False)
        if timezone.is_naive(when):
            when = timezone.make_aware(when, UTC)
    else:
        when = now + timedelta(seconds=float(cfg.get("seconds") or 0))
    if when <= now:
        return Result(output=ctx.scope["last"], logs=["no wait needed"])
    return Result(
        wait=Wait(wake_at=when, state={"output": ctx.scope["last"]}),
        logs=[f"waiting until {when.isoformat()}"],
    )


# -------------------------------------------------------------- approvals


def approval(ctx: StepContext) -> Result:
    from accounts.models import User
    from workflows.models import Approval

    cfg = ctx.config
    emails = [str(e).strip().lower() for e in cfg.get("assignees") or [] if str(e).strip()]
    users = (
        list(User.objects.filter(email__in=emails, memberships__organization_id=ctx.org_id).distinct())
        if emails
        else []
    )
    unknown = sorted(set(emails) - {u.email.lower() for u in users})
    if unknown:
        ctx.log(f"not members of the organization (ignored): {', '.join(unknown)}")
    if emails and not users:
        raise NodeError("None of the approval's assignees is a member of the organization.", retryable=False)
    timeout = cfg.get("timeout_seconds")
    expires = timezone.now() + timedelta(seconds=int(timeout)) if timeout else None
    item = Approval.objects.create(
        organization_id=ctx.org_id,
        step=ctx.step,
        run=ctx.run,
        title=render_text(cfg.get("title") or "Approval needed", ctx.scope)[:200],
        message=render_text(cfg.get("message") or "", ctx.scope)[:10_000],
        expires_at=expires,
    )
    if users:
        item.assignees.set(users)
    from django.db import transaction

    from workflows.tasks import approval_notify

    transaction.on_commit(lambda: approval_notify.delay(item.pk))
    ctx.log(f"waiting for {', '.join(u.email for u in users) or 'any member'}")
    return Result(wait=Wait(wake_at=expires, state={"approval": item.pk}))


# ------------------------------------------------------------------ agents


def _agent(ctx: StepContext, agent_id: int) -> Any:
    from agents.models import Agent

    agent = Agent.objects.for_org(ctx.org_id).filter(pk=agent_id).first()
    if agent is None or agent.is_archived:
        raise NodeError(f"Agent {agent_id} is not available in this organization.", retryable=False)
    return agent


def run_agent(ctx: StepContext, agent_id: int, text: str) -> dict[str, Any]:
    """Run one agent to the end on this worker and return its answer, tokens and cost."""
    from accounts.services import ServiceError
    from agents.models import AgentRun
    from agents.runtime.executor import execute_run
    from agents.services import run_create

    agent = _agent(ctx, agent_id)
    from billing import caps
    from billing.estimates import agent_estimate

    estimate = agent_estimate(agent, text or "(empty)")
    try:
        # The workflow's cost caps (per run, per month) apply before each paid step.
        caps.check_workflow(
            ctx.org_id, ctx.run.workflow_id, estimate.credits if estimate else 0, workflow_run_id=ctx.run.pk
        )
    except ServiceError as exc:
        raise NodeError(f"{agent.name}: {exc}", retryable=False) from None
    try:
        agent_run = run_create(
            agent=agent,
            user=ctx.run.user,
            input=text or "(empty)",
            new_session=False,
            source=AgentRun.Source.WORKFLOW,
            enqueue=False,
        )
    except ServiceError as exc:
        if exc.code == "insufficient_credits":
            raise CreditsPaused(str(exc)) from None
        raise NodeError(f"{agent.name}: {exc}", retryable=False) from None
    from workflows.models import StepRun

    StepRun.objects.filter(pk=ctx.step.pk).update(state={"agent_run": agent_run.pk})
    ctx.log(f"agent {agent.name} (run {agent_run.pk})")
    execute_run(agent_run.pk)
    agent_run.refresh_from_db()
    if agent_run.status != AgentRun.Status.SUCCEEDED:
        raise NodeError(f"{agent.name} failed: {agent_run.error or agent_run.status}")
    return {
        "agent": agent.name,
        "agent_id": agent.pk,
        "run_id": agent_run.pk,
        "text": agent_run.output,
        "json": agent_run.output_json,
        "input_tokens": agent_run.input_tokens,
        "output_tokens": agent_run.output_tokens,
        "cost": agent_run.cost,
    }


def _agent_result(answers: list[dict[str, Any]], output: Any, logs: list[str] | None = None) -> Result:
    return Result(
        output=output,
        input_tokens=sum(a["input_tokens"] for a in answers),
        output_tokens=sum(a["output_tokens"] for a in answers),
        cost=sum((Decimal(a["cost"]) for a in answers), Decimal(0)),
        logs=logs or [],
    )


def agent(ctx: StepContext) -> Result:
    cfg = ctx.config
    text = render_text(cfg.get("input") or "{{ input.text }}", ctx.scope)
    try:
        answer = run_agent(ctx, int(cfg["agent_id"]), text)
    except NodeError as exc:
        fallback = cfg.get("fallback_agent_id")
        if not fallback:
            raise
        ctx.log(f"primary agent failed ({exc}); falling back to agent {fallback}")
        answer = run_agent(ctx, int(fallback), text)
    output = answer["json"] if answer["json"] is not None else answer["text"]
    return _agent_result([answer], output)


def _classify(
    ctx: StepContext, text: str, labels: list[str], instructions: str, agent_id: int | None
) -> tuple[str, dict[str, Any]]:
    """Pick one label with structured output. Returns (label or "default", usage)."""
    from agno.agent import Agent as AgnoAgent

    from agents.config import ModelChoice
    from agents.runtime.builder import model_for, version_config
    from agents.runtime.providers import cost_of, default_model

    if agent_id:
        chosen = _agent(ctx, agent_id)
        version = chosen.published_version or chosen.latest_version()
        cfg = version_config(version)
        provider, name = cfg.model.provider, cfg.model.name
    else:
        provider, name = default_model(org=ctx.org_id)
    schema = {
        "type": "object",
        "properties": {"label": {"type": "string", "enum": labels}, "reason": {"type": "string"}},
        "required": ["label"],
        "additionalProperties": False,
    }
    try:
        model = model_for(ctx.org_id, ModelChoice(provider=provider, name=name), 0.0, 200)
        runner = AgnoAgent(
            model=model,
            instructions=(
                f"{instructions}\nClassify the user's text into exactly one of these labels: "
                f'{", ".join(labels)}. Answer as JSON: {{"label": <one label>, "reason": <short>}}.'
            ),
            output_schema={"type": "json_schema", "json_schema": {"name": "route", "schema": schema}},
            telemetry=False,
        )
        response = runner.run(text)
    except Exception as exc:
        raise NodeError(f"The router's model failed: {exc}") from None
    content = response.content
    label = None
    if isinstance(content, dict):
        label = content.get("label")
    elif isinstance(content, str):
        try:
            parsed = json.loads(content)
            label = parsed.get("label") if isinstance(parsed, dict) else None
        except ValueError:
            lowered = content.lower()
            # Models without structured output (and the demo model): the first label the reply names.
            positions = [(lowered.find(lbl.lower()), lbl) for lbl in labels if lbl.lower() in lowered]
            label = min(positions)[1] if positions else None
    metrics = getattr(response, "metrics", None)
    usage: dict[str, Any] = {
        "input_tokens": int(getattr(metrics, "input_tokens", 0) or 0),
        "output_tokens": int(getattr(metrics, "output_tokens", 0) or 0),
    }
    usage["cost"] = cost_of(provider, name, usage["input_tokens"], usage["output_tokens"])
    if label not in labels:
        ctx.log(f"the model answered {str(content)[:200]!r}: no label, taking 'default'")
        return "default", usage
    return str(label), usage


def router(ctx: StepContext) -> Result:
    cfg = ctx.config
    labels = [str(x) for x in cfg["labels"]]
    text = render_text(cfg.get("input") or "{{ input.text }}", ctx.scope)
    label, usage = _classify(ctx, text, labels, cfg.get("instructions") or "", cfg.get("agent_id"))
    ctx.log(f"routed to {label}")
    return Result(
        output={"label": label, "text": text},
        port=label,
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cost=usage["cost"],
    )


def team(ctx: StepContext) -> Result:
    cfg = ctx.config
    ids = [int(i) for i in cfg["agent_ids"]]
    text = render_text(cfg.get("input") or "{{ input.text }}", ctx.scope)
    mode = cfg.get("mode", "broadcast")
    answers: list[dict[str, Any]] = []
    if mode == "broadcast":
        for agent_id in ids:
            answers.append(run_agent(ctx, agent_id, text))
        output = {
            "responses": {a["agent"]: a["text"] for a in answers},
            "text": "\n\n".join(f"{a['agent']}: {a['text']}" for a in answers),
        }
    elif mode == "coordinate":
        current = text
        for agent_id in ids:
            answer = run_agent(ctx, agent_id, current)
            answers.append(answer)
            current = f"Task: {text}\n\nWork so far from {answer['agent']}:\n{answer['text']}"
        output = {
            "text": answers[-1]["text"],
            "steps": [{"agent": a["agent"], "text": a["text"]} for a in answers],
        }
    else:  # route
        members = {str(_agent(ctx, i).pk): _agent(ctx, i) for i in ids}
        labels = [f"agent_{pk}" for pk in members]
        described = "; ".join(
            f"agent_{pk}: {a.name} — {a.description or a.role}" for pk, a in members.items()
        )
        label, usage = _classify(ctx, text, labels, f"Pick the best team member. Members: {described}", None)
        chosen = int(label.removeprefix("agent_")) if label != "default" else ids[0]
        answer = run_agent(ctx, chosen, text)
        answers.append(answer)
        routed: dict[str, Any] = {"text": answer["text"], "agent": answer["agent"], "routed_to": chosen}
        result = _agent_result(answers, routed)
        result.input_tokens += usage["input_tokens"]
        result.output_tokens += usage["output_tokens"]
        result.cost += usage["cost"]
        return result
    return _agent_result(answers, output)


# ------------------------------------------------------------------- data


def http(ctx: StepContext) -> Result:
    from agents.runtime.tools import _SECRET_REF
    from integrations.safe_http import OutboundHTTPError, UnsafeURLError, safe_request
    from integrations.secrets import secret_value

    def resolve_secrets(org_id: int, value: str) -> str:
        return _SECRET_REF.sub(lambda m: secret_value(org_id=org_id, name=m.group(1)), value)

    cfg = ctx.config
    url = render_text(cfg["url"], ctx.scope).strip()
    method = (cfg.get("method") or "GET").upper()
    try:
        headers = {
            str(k): resolve_secrets(ctx.org_id, render_text(v, ctx.scope))
            for k, v in (cfg.get("headers") or {}).items()
        }
    except Exception as exc:
        raise NodeError(f"A header could not be filled in: {exc}", retryable=False) from None
    body = cfg.get("body")
    rendered = render(body, ctx.scope) if body not in (None, "") else None
    kwargs: dict[str, Any] = {
        "headers": headers,
        "timeout": float(min(int(ctx.node.get("timeout_seconds") or 30), 60)),
    }
    if rendered is not None:
        if isinstance(rendered, dict | list):
            kwargs["json"] = rendered
        else:
            kwargs["data"] = str(rendered)
    ctx.log(f"{method} {url}")
    try:
        response = safe_request(method, url, **kwargs)
    except UnsafeURLError as exc:
        raise NodeError(f"Refused: {exc}", retryable=False) from None
    except OutboundHTTPError as exc:
        raise NodeError(f"The request failed: {exc}") from None
    try:
        payload: Any = response.json()
    except ValueError:
        payload = response.text[:100_000]
    ctx.log(f"→ {response.status_code}")
    output = {"status": response.status_code, "body": payload, "url": response.url}
    if response.status_code >= 400 and not cfg.get("allow_error_status"):
        raise NodeError(
            f"{method} {url} answered {response.status_code}.",
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    return Result(output=output)


def knowledge(ctx: StepContext) -> Result:
    from django.http import Http404

    from knowledge.search import SearchError, search

    cfg = ctx.config
    query = render_text(cfg["query"], ctx.scope).strip()
    if not query:
        raise NodeError("The search query is empty.", retryable=False)
    try:
        hits = search(
            org=ctx.org_id,
            query=query,
            knowledge_base_ids=[int(i) for i in cfg["knowledge_base_ids"]],
            top_k=int(cfg.get("top_k") or 5),
            mode=cfg.get("mode") or "hybrid",
        )
    except Http404:
        raise NodeError(
            "A knowledge base of this node is not in the organization.", retryable=False
        ) from None
    except SearchError as exc:
        raise NodeError(str(exc), retryable=False) from None
    chunks = [
        {
            "document": h.document_title,
            "document_id": h.document_id,
            "page": h.page,
            "text": h.text,
            "score": h.score,
        }
        for h in hits
    ]
    ctx.log(f"{len(chunks)} chunk(s) for {query!r}")
    text = "\n\n".join(
        f"[{c['document']}{', p. ' + str(c['page']) if c['page'] else ''}] {c['text']}" for c in chunks
    )
    return Result(output={"query": query, "chunks": chunks, "text": text})


def integration(ctx: StepContext) -> Result:
    cfg = ctx.config
    fn = integration_action(str(cfg.get("app")), str(cfg.get("action")))
    if fn is None:
        raise NodeError(
            f"The integration action {cfg.get('app')}.{cfg.get('action')} is not available.", retryable=False
        )
    params = render(cfg.get("params") or {}, ctx.scope)
    return Result(output=fn(ctx.org_id, params))


def subworkflow(ctx: StepContext) -> Result:
    from workflows.engine import start_run
    from workflows.models import Workflow

    cfg = ctx.config
    child = (
        Workflow.objects.for_org(ctx.org_id)
        .filter(pk=int(cfg["workflow_id"]))
        .select_related("published_version")
        .first()
    )
    if child is None or child.status == Workflow.Status.ARCHIVED:
        raise NodeError(
            f"Workflow {cfg['workflow_id']} is not available in this organization.", retryable=False
        )
    if child.published_version is None:
        raise NodeError(f"The workflow “{child.name}” is not published.", retryable=False)
    depth = 0
    parent = ctx.run
    while parent.parent_step_id and depth < 10:
        depth += 1
        parent = parent.parent_step.run  # type: ignore[union-attr]
    if depth >= 5:
        raise NodeError("Sub-workflows are nested too deeply (5 levels at most).", retryable=False)
    data = render(cfg.get("input") or "{{ last }}", ctx.scope)
    if not isinstance(data, dict):
        data = {"text": data if isinstance(data, str) else json.dumps(data, default=str)}
    run = start_run(
        workflow=child,
        version=child.published_version,
        user=ctx.run.user,
        input=data,
        source="subworkflow",
        parent_step=ctx.step,
    )
    ctx.log(f"started {child.name} (run {run.pk})")
    return Result(wait=Wait(state={"child_run": run.pk}))


EXECUTORS: dict[str, Executor] = {
    "trigger": trigger,
    "agent": agent,
    "team": team,
    "router": router,
    "condition": condition,
    "switch": switch,
    "parallel": parallel,
    "join": join,
    "loop": loop,
    "approval": approval,
    "delay": delay,
    "subworkflow": subworkflow,
    "http": http,
    "transform": transform,
    "set_variable": set_variable,
    "knowledge": knowledge,
    "integration": integration,
    "end": end,
}

__all__ = ["EXECUTORS", "integration_action", "register_integration_action"]
