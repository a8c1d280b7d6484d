"""Executors of the AI nodes: agent, team and LLM router. Each agent step is an AgentRun, billed and
traced like any other run."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from workflows.engine.types import CreditsPaused, NodeError, Result, StepContext
from workflows.expressions import render_text


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
