"""Executing one step in a Celery task: claim it, check the run may still go on, run its node."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from config import prepared
from config.prepared import Prepared
from workflows import events
from workflows.engine.chain import _run_chain
from workflows.engine.common import graph_for, timeout_of
from workflows.engine.steps import _error_of, _failed, _scope
from workflows.engine.types import LEASE_GRACE_SECONDS, CreditsPaused, NodeError, Result, StepContext, Wait
from workflows.engine.waiting import _wait
from workflows.graph import NODE_TYPES
from workflows.models import StepRun, WorkflowRun


def execute_step(step_id: int) -> str:
    """The task body: claim the step, run it, and keep going through inline successors."""
    queue = [step_id]
    status = "skipped"
    while queue:
        current = queue.pop(0)
        status, inline_next = _run_one(current)
        queue.extend(inline_next)
    return status


# The step to claim with its run, while the run is still active: read on every step, compiled once.
_CLAIMABLE = Prepared(
    lambda pk: (
        StepRun.objects.filter(pk=pk, status=StepRun.Status.PENDING)
        .filter(run__status__in=WorkflowRun.ACTIVE)
        .select_related("run")
    ),
    int,
)


def _claim(step_id: int) -> StepRun | None:
    now = timezone.now()
    step = _CLAIMABLE.first(step_id)
    if step is None:
        return None
    graph = graph_for(step.run.version_id)
    node = graph.nodes.get(step.node_id)
    if node is None:
        return None
    lease = now + timedelta(seconds=timeout_of(node) + LEASE_GRACE_SECONDS)
    claimed = prepared.update(
        StepRun,
        where={"id": step_id, "status": StepRun.Status.PENDING},
        values={
            "status": StepRun.Status.RUNNING,
            "started_at": now,
            "lease_expires_at": lease,
            "wake_at": None,
        },
        add={"attempt": 1},
    )
    if not claimed:
        return None
    step.status, step.attempt, step.started_at, step.lease_expires_at = (
        StepRun.Status.RUNNING,
        step.attempt + 1,
        now,
        lease,
    )
    return step


def _still_allowed(run: WorkflowRun) -> str | None:
    """Tasks re-check permission: the run's organization and (if any) its user's membership."""
    from accounts.models import Membership

    if (
        run.user_id is not None
        and not Membership.objects.filter(organization_id=run.organization_id, user_id=run.user_id).exists()
    ):
        return "The user who started this run is no longer a member of the organization."
    return None


def _run_one(step_id: int) -> tuple[str, list[int]]:
    step = _claim(step_id)
    if step is None:
        return "skipped", []
    run = step.run
    graph = graph_for(run.version_id)
    node = graph.node(step.node_id)
    if NODE_TYPES[node["type"]].inline:
        if node["type"] == "trigger":
            problem = _still_allowed(run)
            if problem:
                ctx = StepContext(step=step, run=run, graph=graph, node=node, config={}, scope={})
                return _failed(step, ctx, problem, retryable=False)
        return _run_chain(step, None)
    if run.status == WorkflowRun.Status.PENDING and WorkflowRun.objects.filter(
        pk=run.pk, status=WorkflowRun.Status.PENDING
    ).update(status=WorkflowRun.Status.RUNNING, started_at=step.started_at):
        run.status = WorkflowRun.Status.RUNNING
        run.started_at = step.started_at
        events.emit(run.pk, "run", {"status": "running"})
    elif run.status == WorkflowRun.Status.WAITING and WorkflowRun.objects.filter(
        pk=run.pk, status=WorkflowRun.Status.WAITING
    ).update(status=WorkflowRun.Status.RUNNING):
        run.status = WorkflowRun.Status.RUNNING  # resumed (credits added, a retry after a pause)
        events.emit(run.pk, "run", {"status": "running"})
    events.emit(
        run.pk,
        "step_started",
        {"attempt": step.attempt, "type": node["type"], "iteration": step.iteration},
        step_id=step.pk,
        node_id=step.node_id,
    )
    context = run.context or {}  # read with the claim, a moment ago
    ctx = StepContext(
        step=step,
        run=run,
        graph=graph,
        node=node,
        config=graph.config(step.node_id),
        scope=_scope(run, context, step, graph),
    )
    from workflows.nodes import EXECUTORS

    try:
        problem = _still_allowed(run)
        if problem:
            raise NodeError(problem, retryable=False)
        result = EXECUTORS[node["type"]](ctx)
    except CreditsPaused as exc:
        ctx.log(f"paused: {exc}")
        return _wait(
            step, ctx, Result(wait=Wait(state={"paused_for": "credits", "reason": str(exc)}), logs=ctx.logs)
        )
    except Exception as exc:
        message, retryable, logs = _error_of(exc, node)
        return _failed(step, ctx, message, retryable=retryable, logs=logs)
    result.logs = ctx.logs + result.logs
    if result.wait is not None:
        return _wait(step, ctx, result)
    return _run_chain(step, result)
