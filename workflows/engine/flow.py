"""Moving a run on: completing a step (its output, the next steps, joins), failing one for good
(its error edge, or the run fails), finishing and cancelling runs."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from workflows import events
from workflows.engine.common import _dispatch_on_commit, _has_loops, _json_safe, _ms, _preview, graph_for
from workflows.engine.types import _UNSET, MAX_STEPS_PER_RUN, NodeError, Result
from workflows.graph import NODE_TYPES, Graph
from workflows.models import Approval, StepRun, WorkflowRun

logger = logging.getLogger(__name__)


def complete_step(step_id: int, attempt: int | None, result: Result, *, from_status: str) -> list[int]:
    """Record a step's result and create what follows, all under the run's lock. Returns the ids of
    inline successors for the caller to run now; the others are queued on commit."""
    inline_ids: list[int] = []
    queued: list[int] = []
    now = timezone.now()
    with transaction.atomic():
        step = StepRun.objects.select_related(None).get(pk=step_id)
        run = WorkflowRun.objects.select_for_update().get(pk=step.run_id)
        if run.is_finished:
            StepRun.objects.filter(pk=step_id, status__in=StepRun.ACTIVE).update(
                status=StepRun.Status.CANCELLED, finished_at=now
            )
            return []
        guard = Q(pk=step_id, status=from_status)
        if attempt is not None:
            guard &= Q(attempt=attempt)
        output = _json_safe(result.output)
        updated = StepRun.objects.filter(guard).update(
            status=StepRun.Status.SUCCEEDED,
            output=output,
            port=result.port,
            logs=(step.logs or []) + result.logs,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost=result.cost,
            finished_at=now,
            lease_expires_at=None,
            wake_at=None,
            error="",
        )
        if not updated:
            return []  # a stale worker (its lease ran out and the step moved on): drop the result
        graph = graph_for(run.version_id)
        context = run.context
        context.setdefault("nodes", {})[step.node_id] = {"output": output, "port": result.port}
        if result.vars:
            context.setdefault("vars", {}).update(_json_safe(result.vars))
        if result.loop_state is not None:
            context.setdefault("loops", {})[step.node_id] = result.loop_state
        fields: dict[str, Any] = {"context": context}
        if result.input_tokens or result.output_tokens or result.cost:
            fields.update(
                input_tokens=F("input_tokens") + result.input_tokens,
                output_tokens=F("output_tokens") + result.output_tokens,
                cost=F("cost") + result.cost,
            )
        node = graph.node(step.node_id)
        if node["type"] == "end":
            fields["output"] = output
        WorkflowRun.objects.filter(pk=run.pk).update(**fields)
        events.emit(
            run.pk,
            "step_succeeded",
            {
                "port": result.port,
                "output": _preview(output),
                "duration_ms": _ms(step.started_at, now),
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
            },
            step_id=step.pk,
            node_id=step.node_id,
        )
        for sid, inline in _advance(run, graph, step, result.port, output):
            (inline_ids if inline else queued).append(sid)
        _settle(run, graph)
        _dispatch_on_commit(queued)
    return inline_ids


def _advance(run: WorkflowRun, graph: Graph, step: StepRun, port: str, output: Any) -> list[tuple[int, bool]]:
    """Create the steps that follow `step` leaving by `port`. Joins collect arrivals first."""
    created: list[tuple[int, bool]] = []
    targets = graph.next_nodes(step.node_id, port)
    if not targets:
        return created
    # Only a loop can make a run long; a graph without one is bounded by its size.
    if _has_loops(graph) and StepRun.objects.filter(run=run).count() + len(targets) > MAX_STEPS_PER_RUN:
        raise NodeError(f"The run reached the limit of {MAX_STEPS_PER_RUN} steps.", retryable=False)
    iteration = step.iteration
    if step.node_type == "loop" and port == "body" and isinstance(output, dict):
        iteration = int(output.get("index") or 0)
    for target in targets:
        node = graph.node(target)
        inline = NODE_TYPES[node["type"]].inline
        if node["type"] == "join":
            sid = _arrive_at_join(run, graph, target, step, output, iteration)
            if sid:
                created.append((sid, True))
            continue
        new = StepRun.objects.create(
            run=run,
            node_id=target,
            node_type=node["type"],
            from_node=step.node_id,
            iteration=iteration,
            input={"last": output},
        )
        created.append((new.pk, inline))
    return created


def _arrive_at_join(
    run: WorkflowRun, graph: Graph, join_id: str, step: StepRun, output: Any, iteration: int
) -> int | None:
    """Record an arrival; return the join's step id once it should run (all arrived, or the first for 'any')."""
    mode = graph.config(join_id).get("mode", "all")
    expected = sorted(set(graph.incoming.get(join_id, [])))
    join = (
        StepRun.objects.filter(run=run, node_id=join_id, iteration=iteration, status=StepRun.Status.WAITING)
        .order_by("-id")
        .first()
    )
    if join is None:
        if mode == "any" and StepRun.objects.filter(run=run, node_id=join_id, iteration=iteration).exists():
            return None  # an earlier branch already released it; later ones are ignored
        join = StepRun.objects.create(
            run=run,
            node_id=join_id,
            node_type="join",
            from_node=step.node_id,
            iteration=iteration,
            status=StepRun.Status.WAITING,
            state={"arrived": {}},
        )
    arrived = dict(join.state.get("arrived") or {})
    arrived[step.node_id] = output
    ready = mode == "any" or set(expected) <= set(arrived)
    StepRun.objects.filter(pk=join.pk).update(
        state={"arrived": arrived},
        input={"last": output, "arrived": arrived},
        status=StepRun.Status.PENDING if ready else StepRun.Status.WAITING,
    )
    return join.pk if ready else None


def _settle(run: WorkflowRun, graph: Graph, known_output: Any = None) -> None:
    """After any change, under the run lock: end the run when nothing is left, release joins that can
    no longer get more arrivals, and keep the run's status (running/waiting) honest."""
    active = dict(
        StepRun.objects.filter(run=run, status__in=StepRun.ACTIVE)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    if not active:
        _finish(run, WorkflowRun.Status.SUCCEEDED, output=known_output)
        return
    if not active.get(StepRun.Status.PENDING) and not active.get(StepRun.Status.RUNNING):
        waiting = list(StepRun.objects.filter(run=run, status=StepRun.Status.WAITING))
        joins = [s for s in waiting if s.node_type == "join"]
        if joins and len(joins) == len(waiting):
            # Only joins are waiting: branches that did not run (a condition went the other way)
            # will never arrive, so release them with what they have.
            ids = []
            for join in joins:
                StepRun.objects.filter(pk=join.pk).update(status=StepRun.Status.PENDING)
                ids.append(join.pk)
            _dispatch_on_commit(ids)
            return
        if run.status != WorkflowRun.Status.WAITING:
            WorkflowRun.objects.filter(pk=run.pk).update(status=WorkflowRun.Status.WAITING)
            events.emit(run.pk, "run", {"status": "waiting"})
    elif run.status == WorkflowRun.Status.WAITING:
        WorkflowRun.objects.filter(pk=run.pk).update(status=WorkflowRun.Status.RUNNING)
        events.emit(run.pk, "run", {"status": "running"})


def _finish(run: WorkflowRun, status: str, error: str = "", output: Any = None) -> None:
    """End the run (caller holds the run lock)."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "completed_at": now, "error": error[:5000]}
    if run.started_at is None:
        fields["started_at"] = now
    if status == WorkflowRun.Status.SUCCEEDED:
        if output is None or output is _UNSET:
            output = WorkflowRun.objects.filter(pk=run.pk).values_list("output", flat=True).get()
        if output is None:
            # No end node was reached: the output is the last finished step's.
            last = (
                StepRun.objects.filter(run=run, status=StepRun.Status.SUCCEEDED)
                .order_by("-finished_at", "-id")
                .first()
            )
            fields["output"] = last.output if last else None
            output = fields["output"]
    else:
        output = None
        StepRun.objects.filter(run=run, status__in=StepRun.ACTIVE).update(
            status=StepRun.Status.CANCELLED, finished_at=now, lease_expires_at=None
        )
        Approval.objects.filter(run=run, decision=Approval.Decision.PENDING).update(
            decision=Approval.Decision.CANCELLED, decided_at=now
        )
    WorkflowRun.objects.filter(pk=run.pk).update(**fields)
    run.status = status
    payload: dict[str, Any] = {"status": status}
    if error:
        payload["error"] = error
    if output is not None:
        payload["output"] = _preview(output)
    events.emit(run.pk, "done", payload)
    if run.parent_step_id:
        parent_step_id = run.parent_step_id
        transaction.on_commit(lambda: _child_done_later(parent_step_id, run.pk))
    if status != WorkflowRun.Status.SUCCEEDED:
        _cancel_children(run)


def _child_done_later(parent_step_id: int, child_run_id: int) -> None:
    from workflows.tasks import child_finished

    child_finished.delay(parent_step_id, child_run_id)


def _cancel_children(run: WorkflowRun) -> None:
    children = list(
        WorkflowRun.objects.filter(parent_step__run=run, status__in=WorkflowRun.ACTIVE).values_list(
            "pk", flat=True
        )
    )
    if children:
        transaction.on_commit(lambda: [cancel_run(c, reason="The parent run ended.") for c in children])
    # Agent runs started by steps that are still running get their cancel flag.
    from agents.runtime import cancel as agent_cancel

    for state in StepRun.objects.filter(run=run, state__has_key="agent_run").values_list("state", flat=True):
        try:
            agent_cancel.request(int(state["agent_run"]))
        except Exception:  # pragma: no cover - best effort
            logger.warning("could not cancel agent run of %s", run.pk, exc_info=True)


def fail_step(
    step_id: int, attempt: int | None, message: str, *, logs: list[str], from_status: str
) -> list[int]:
    """The step failed for good: follow its error edge, or fail the run."""
    inline_ids: list[int] = []
    now = timezone.now()
    with transaction.atomic():
        step = StepRun.objects.get(pk=step_id)
        run = WorkflowRun.objects.select_for_update().get(pk=step.run_id)
        guard = Q(pk=step_id, status=from_status)
        if attempt is not None:
            guard &= Q(attempt=attempt)
        updated = StepRun.objects.filter(guard).update(
            status=StepRun.Status.FAILED,
            error=message[:5000],
            logs=(step.logs or []) + logs,
            finished_at=now,
            lease_expires_at=None,
            wake_at=None,
        )
        if not updated or run.is_finished:
            return []
        events.emit(
            run.pk,
            "step_failed",
            {"error": message, "attempt": step.attempt},
            step_id=step.pk,
            node_id=step.node_id,
        )
        graph = graph_for(run.version_id)
        if graph.has_port(step.node_id, "error"):
            output = {"error": message, "node": step.node_id}
            context = run.context
            context.setdefault("nodes", {})[step.node_id] = {"output": output, "port": "error"}
            WorkflowRun.objects.filter(pk=run.pk).update(context=context)
            queued: list[int] = []
            for sid, inline in _advance(run, graph, step, "error", output):
                (inline_ids if inline else queued).append(sid)
            _settle(run, graph)
            _dispatch_on_commit(queued)
            return inline_ids
        name = graph.node(step.node_id).get("name") or step.node_id
        _finish(run, WorkflowRun.Status.FAILED, f"Step '{name}' failed: {message}")
    return []


def cancel_run(run_id: int, reason: str = "Cancelled") -> bool:
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return False
        _finish(run, WorkflowRun.Status.CANCELLED, reason)
    return True
