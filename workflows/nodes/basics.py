"""Executors of the logic and flow nodes: trigger, transform, set-variable, end, parallel, join,
condition, switch, loop, delay and human approval."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from workflows.engine.types import NodeError, Result, StepContext, Wait
from workflows.expressions import evaluate, render, render_text


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
