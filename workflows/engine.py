"""The durable workflow engine: a state machine in PostgreSQL, one StepRun per node execution.

- A step is created `pending` and queued. The task that runs it first claims it with a conditional
  update (pending -> running, attempt + 1, a lease), so a repeated or late task does nothing.
- Pure, fast nodes (trigger, transform, condition, switch, parallel, join, loop, set-variable, end)
  continue in the task that finished the step before them: they are still created `pending` and
  claimed the same way, just without a trip through the broker.
- Every completion happens in one transaction that locks the run row: the step's result, the run's
  context (node outputs, variables, loop state), the next steps, and the run's own status. Parallel
  branches finishing together are therefore serialized, and exactly one of them ends the run.
- Approvals, delays and sub-workflows are `waiting` steps in the database, never sleeping workers.
  A decision, the beat sweeper (timeouts, due delays, expired leases) or the child run moves them on.
- A failed step is retried by its policy (attempts, exponential backoff). When it fails for good it
  follows its `error` edge if it has one, else the run fails and everything still open is cancelled.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from workflows import events
from workflows.graph import NODE_TYPES, Graph
from workflows.models import Approval, StepRun, WorkflowRun, WorkflowVersion

logger = logging.getLogger(__name__)

LEASE_GRACE_SECONDS = int(os.environ.get("WORKFLOW_LEASE_GRACE_SECONDS", "30"))
DEFAULT_TIMEOUTS = {
    "agent": 600,
    "team": 1200,
    "router": 120,
    "http": 60,
    "knowledge": 60,
    "integration": 120,
}
DEFAULT_TIMEOUT = 60
SHORT_WAIT_SECONDS = 300  # delays up to this long also get a countdown task; the sweeper backs them all up
MAX_STEPS_PER_RUN = 5000
MAX_OUTPUT_CHARS = 200_000


class NodeError(Exception):
    """A node failed with a message for people. `retryable=False` skips the retry policy."""

    def __init__(self, message: str, *, retryable: bool = True, logs: list[str] | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.logs = logs or []


class CreditsPaused(Exception):
    """The organization ran out of credits: the step waits (the run pauses) until a top-up."""


@dataclass
class Wait:
    """The step waits: until `wake_at` (delay, approval timeout) and/or for an outside event."""

    wake_at: datetime | None = None
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    output: Any = None
    port: str = "out"
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    logs: list[str] = field(default_factory=list)
    wait: Wait | None = None
    vars: dict[str, Any] | None = None  # set-variable
    loop_state: dict[str, Any] | None = None  # loop


@dataclass
class StepContext:
    """What a node executor sees."""

    step: StepRun
    run: WorkflowRun
    graph: Graph
    node: dict[str, Any]
    config: dict[str, Any]
    scope: dict[str, Any]
    logs: list[str] = field(default_factory=list)

    @property
    def org_id(self) -> int:
        return self.run.organization_id

    def log(self, message: str) -> None:
        self.logs.append(f"{timezone.now().strftime('%H:%M:%S.%f')[:-3]} {message}")


# ------------------------------------------------------------------ graphs

_graphs: OrderedDict[int, Graph] = OrderedDict()
_graphs_lock = threading.Lock()


def graph_for(version_id: int) -> Graph:
    """Versions are immutable, so their parsed graphs are cached per process."""
    with _graphs_lock:
        graph = _graphs.get(version_id)
        if graph is not None:
            _graphs.move_to_end(version_id)
            return graph
    data = WorkflowVersion.objects.values_list("graph", flat=True).get(pk=version_id)
    graph = Graph.from_json(data)
    with _graphs_lock:
        _graphs[version_id] = graph
        while len(_graphs) > 512:
            _graphs.popitem(last=False)
    return graph


def timeout_of(node: dict[str, Any]) -> int:
    return int(node.get("timeout_seconds") or DEFAULT_TIMEOUTS.get(node["type"], DEFAULT_TIMEOUT))


def retry_of(node: dict[str, Any]) -> tuple[int, float]:
    retry = node.get("retry") or {}
    return int(retry.get("max_attempts", 1) or 1), float(retry.get("backoff_seconds", 2) or 0)


def dispatch(step_id: int, countdown: float | None = None) -> None:
    from workflows.tasks import run_step

    if countdown:
        run_step.apply_async(args=[step_id], countdown=countdown)
    else:
        run_step.delay(step_id)


def _dispatch_on_commit(step_ids: list[int], countdown: float | None = None) -> None:
    def send() -> None:
        for step_id in step_ids:
            dispatch(step_id, countdown)

    if step_ids:
        transaction.on_commit(send)


# -------------------------------------------------------------------- start


def _trigger_for(graph: Graph, source: str, trigger_node: str | None) -> str:
    if trigger_node:
        if trigger_node not in graph.nodes or graph.nodes[trigger_node]["type"] != "trigger":
            raise ValueError(f"{trigger_node!r} is not a trigger of this workflow")
        return trigger_node
    preferred = {
        "manual": ("manual", "api"),
        "test": ("manual", "api", "webhook", "schedule", "integration"),
        "api": ("api", "manual"),
        "schedule": ("schedule",),
        "webhook": ("webhook",),
        "integration": ("integration",),
        "subworkflow": ("manual", "api"),
    }.get(source, ("manual",))
    for kind in preferred:
        found = graph.triggers(kind)
        if found:
            return found[0]
    any_trigger = graph.triggers()
    if not any_trigger:
        raise ValueError("the workflow has no trigger")
    return any_trigger[0]


def start_run(
    *,
    workflow: Any,
    version: WorkflowVersion,
    user: Any,
    input: dict[str, Any],
    source: str,
    trigger_node: str | None = None,
    parent_step: StepRun | None = None,
) -> WorkflowRun:
    graph = graph_for(version.pk)
    trigger = _trigger_for(graph, source, trigger_node)
    with transaction.atomic():
        run = WorkflowRun.objects.create(
            organization_id=workflow.organization_id,
            workflow=workflow,
            version=version,
            source=source,
            user=user,
            parent_step=parent_step,
            input=input,
            context={"vars": {}, "nodes": {}, "loops": {}},
        )
        step = StepRun.objects.create(run=run, node_id=trigger, node_type="trigger", input=input)
        _dispatch_on_commit([step.pk])
    return run


# ----------------------------------------------------------------- execute


def _scope(run: WorkflowRun, context: dict[str, Any], step: StepRun, graph: Graph) -> dict[str, Any]:
    loops = context.get("loops") or {}
    item = index = None
    enclosing = _enclosing_loop(graph, step.node_id)
    if enclosing and enclosing in loops:
        item, index = loops[enclosing].get("item"), loops[enclosing].get("index")
    last = (
        (step.input or {}).get("last")
        if isinstance(step.input, dict) and step.node_type != "trigger"
        else step.input
    )
    return {
        "input": run.input,
        "vars": context.get("vars") or {},
        "nodes": context.get("nodes") or {},
        "loop": loops,
        "item": item,
        "index": index,
        "last": last,
        "run": {"id": run.pk, "source": run.source, "workflow": run.workflow_id},
    }


def _enclosing_loop(graph: Graph, node_id: str) -> str | None:
    """The innermost loop whose body holds the node (cached on the graph, which never changes)."""
    cache: dict[str, str | None] = graph.__dict__.setdefault("_enclosing", {})
    if node_id not in cache:
        best: tuple[int, str] | None = None
        for nid, node in graph.nodes.items():
            if node["type"] == "loop":
                body = graph.loop_body(nid)
                if node_id in body and (best is None or len(body) < best[0]):
                    best = (len(body), nid)
        cache[node_id] = best[1] if best else None
    return cache[node_id]


def execute_step(step_id: int) -> str:
    """The task body: claim the step, run it, and keep going through inline successors."""
    queue = [step_id]
    status = "skipped"
    while queue:
        current = queue.pop(0)
        status, inline_next = _run_one(current)
        queue.extend(inline_next)
    return status


def _claim(step_id: int) -> StepRun | None:
    now = timezone.now()
    step = (
        StepRun.objects.filter(pk=step_id, status=StepRun.Status.PENDING)
        .filter(run__status__in=WorkflowRun.ACTIVE)
        .select_related("run")
        .first()
    )
    if step is None:
        return None
    graph = graph_for(step.run.version_id)
    node = graph.nodes.get(step.node_id)
    if node is None:
        return None
    lease = now + timedelta(seconds=timeout_of(node) + LEASE_GRACE_SECONDS)
    claimed = StepRun.objects.filter(pk=step_id, status=StepRun.Status.PENDING).update(
        status=StepRun.Status.RUNNING,
        attempt=F("attempt") + 1,
        started_at=now,
        lease_expires_at=lease,
        wake_at=None,
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


def _error_of(exc: Exception, node: dict[str, Any]) -> tuple[str, bool, list[str]]:
    """A node's exception as (message for people, retryable, logs)."""
    from workflows.expressions import ExpressionError

    if isinstance(exc, NodeError):
        return str(exc), exc.retryable, exc.logs
    if isinstance(exc, ExpressionError):
        return f"Template or expression error: {exc}", False, []
    logger.exception("workflow node %s crashed", node.get("id"))
    return f"Internal error in the {node['type']} node ({type(exc).__name__}: {exc}).", True, []


def _run_chain(first: StepRun, first_result: Result | None) -> tuple[str, list[int]]:
    """Finish `first` (running, claimed by this task) and run the pure nodes after it, all in one
    transaction under the run's lock: one UPDATE for the claimed step, one INSERT for the steps
    that follow (pure ones already finished, others pending), one INSERT for their events, one
    UPDATE for the run. Returns ids this task should run next (released joins, extra pure branches)."""
    from workflows.models import WorkflowRunEvent
    from workflows.nodes import EXECUTORS

    now = timezone.now()
    follow: list[int] = []
    failing: tuple[StepRun, str, bool, list[str]] | None = None
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().get(pk=first.run_id)
        if run.is_finished:
            StepRun.objects.filter(pk=first.pk, status__in=StepRun.ACTIVE).update(
                status=StepRun.Status.CANCELLED, finished_at=now
            )
            return "cancelled", []
        graph = graph_for(run.version_id)
        context = run.context or {}
        context.setdefault("nodes", {})
        pending_events: list[tuple[str, dict[str, Any], StepRun | None, str]] = []
        run_fields: dict[str, Any] = {}
        if run.status != WorkflowRun.Status.RUNNING:
            if run.started_at is None:
                run.started_at = run_fields["started_at"] = first.started_at or now
            run.status = run_fields["status"] = WorkflowRun.Status.RUNNING
            pending_events.append(("run", {"status": "running"}, None, ""))
        tokens: list[Any] = [0, 0, Decimal(0)]
        new_rows: list[StepRun] = []
        queued: list[StepRun] = []
        extra_pure: list[StepRun] = []
        end_output: Any = _UNSET
        limit_error = ""
        current, result = first, first_result
        while True:
            node = graph.node(current.node_id)
            if result is None:
                ctx = StepContext(
                    step=current,
                    run=run,
                    graph=graph,
                    node=node,
                    config=graph.config(current.node_id),
                    scope=_scope(run, context, current, graph),
                )
                try:
                    result = EXECUTORS[node["type"]](ctx)
                except Exception as exc:
                    message, retryable, logs = _error_of(exc, node)
                    failing = (current, message, retryable, ctx.logs + logs)
                    break
                result.logs = ctx.logs + result.logs
            output = _json_safe(result.output)
            current.status, current.output, current.port = StepRun.Status.SUCCEEDED, output, result.port
            current.logs = (current.logs or []) + result.logs
            current.input_tokens, current.output_tokens, current.cost = (
                result.input_tokens,
                result.output_tokens,
                result.cost,
            )
            current.finished_at, current.lease_expires_at, current.wake_at, current.error = (
                now,
                None,
                None,
                "",
            )
            tokens[0] += result.input_tokens
            tokens[1] += result.output_tokens
            tokens[2] += result.cost
            context["nodes"][current.node_id] = {"output": output, "port": result.port}
            if result.vars:
                context.setdefault("vars", {}).update(_json_safe(result.vars))
            if result.loop_state is not None:
                context.setdefault("loops", {})[current.node_id] = result.loop_state
            if node["type"] == "end":
                end_output = output
            pending_events.append(
                (
                    "step_succeeded",
                    {
                        "port": result.port,
                        "output": _preview(output),
                        "duration_ms": _ms(current.started_at, timezone.now()),
                        "input_tokens": result.input_tokens,
                        "output_tokens": result.output_tokens,
                    },
                    current,
                    current.node_id,
                )
            )
            targets = graph.next_nodes(current.node_id, result.port)
            if (
                targets
                and _has_loops(graph)
                and StepRun.objects.filter(run=run).count() + len(new_rows) + len(targets) > MAX_STEPS_PER_RUN
            ):
                limit_error = f"The run reached the limit of {MAX_STEPS_PER_RUN} steps."
                break
            iteration = current.iteration
            if current.node_type == "loop" and result.port == "body" and isinstance(output, dict):
                iteration = int(output.get("index") or 0)
            next_inline: StepRun | None = None
            for target in targets:
                tnode = graph.node(target)
                if tnode["type"] == "join":
                    _flush(new_rows)
                    sid = _arrive_at_join(run, graph, target, current, output, iteration)
                    if sid:
                        follow.append(sid)
                    continue
                row = StepRun(
                    run=run,
                    node_id=target,
                    node_type=tnode["type"],
                    from_node=current.node_id,
                    iteration=iteration,
                    input={"last": output},
                    created_at=now,
                )
                pure = NODE_TYPES[tnode["type"]].inline
                if pure and next_inline is None:
                    # Claimed by this task as it is created: nobody else can pick up a running row.
                    row.status, row.attempt, row.started_at = StepRun.Status.RUNNING, 1, timezone.now()
                    row.lease_expires_at = now + timedelta(seconds=DEFAULT_TIMEOUT + LEASE_GRACE_SECONDS)
                    next_inline = row
                elif pure:
                    extra_pure.append(row)
                else:
                    queued.append(row)
                new_rows.append(row)
            if next_inline is None:
                break
            current, result = next_inline, None
        # Writes: the claimed step (guarded: a stale worker writes nothing), new steps, events, the run.
        if first.status == StepRun.Status.SUCCEEDED and not StepRun.objects.filter(
            pk=first.pk, status=StepRun.Status.RUNNING, attempt=first.attempt
        ).update(
            status=first.status,
            output=first.output,
            port=first.port,
            logs=first.logs,
            input_tokens=first.input_tokens,
            output_tokens=first.output_tokens,
            cost=first.cost,
            finished_at=first.finished_at,
            lease_expires_at=None,
            wake_at=None,
            error="",
        ):
            transaction.set_rollback(True)
            return "stale", []
        _flush(new_rows)
        finishing = False
        if failing is None and not limit_error and not follow and not queued and not extra_pure:
            # The common end of a run: nothing left open means it succeeded, in this same write.
            finishing = not StepRun.objects.filter(run=run, status__in=StepRun.ACTIVE).exists()
        if finishing:
            final_output = (
                end_output
                if end_output is not _UNSET
                else (run.output if run.output is not None else current.output)
            )
            run.status = run_fields["status"] = WorkflowRun.Status.SUCCEEDED
            run_fields.update(completed_at=timezone.now(), error="", output=final_output)
            pending_events.append(
                ("done", {"status": "succeeded", "output": _preview(final_output)}, None, "")
            )
            if run.parent_step_id:
                parent_step_id, child_id = run.parent_step_id, run.pk
                transaction.on_commit(lambda: _child_done_later(parent_step_id, child_id))
        seq = run.last_seq
        event_rows = []
        for type_, payload, step_obj, node_id in pending_events:
            seq += 1
            event_rows.append(
                WorkflowRunEvent(
                    run_id=run.pk,
                    seq=seq,
                    type=type_,
                    step_id=step_obj.pk if step_obj is not None else None,
                    node_id=node_id,
                    payload=payload,
                    created_at=now,
                )
            )
        WorkflowRunEvent.objects.bulk_create(event_rows)
        run_fields.update(context=context, last_seq=seq)
        if tokens[0] or tokens[1] or tokens[2]:
            run_fields.update(
                input_tokens=F("input_tokens") + tokens[0],
                output_tokens=F("output_tokens") + tokens[1],
                cost=F("cost") + tokens[2],
            )
        if end_output is not _UNSET and not finishing:
            run_fields["output"] = end_output
        WorkflowRun.objects.filter(pk=run.pk).update(**run_fields)
        run.last_seq = seq
        for event in event_rows:
            events.publish(run.pk, event.as_dict())
        if limit_error:
            _finish(run, WorkflowRun.Status.FAILED, limit_error)
        elif failing is None and not finishing and not (queued or extra_pure or follow):
            # (With a next step created the run is plainly still running: nothing to settle.)
            _settle(run, graph, known_output=end_output)
        if len(queued) == 1 and not follow and not extra_pure:
            # One next step and this worker is free: run it here rather than through the broker
            # (it is claimed the same way; if this worker dies, its lease expires and it is re-queued).
            follow.append(queued[0].pk)
        else:
            _dispatch_on_commit([r.pk for r in queued])
        follow.extend(r.pk for r in extra_pure)
    if failing is not None:
        bad, message, retryable, logs = failing
        ctx = StepContext(step=bad, run=run, graph=graph, node=graph.node(bad.node_id), config={}, scope={})
        status, more = _failed(bad, ctx, message, retryable=retryable, logs=logs)
        return status, follow + more
    return "succeeded", follow


_UNSET: Any = object()


def _json_safe(value: Any) -> Any:
    import json

    text = json.dumps(value, default=str)
    if len(text) > MAX_OUTPUT_CHARS:
        return {"truncated": True, "preview": text[:2000]}
    return json.loads(text)


def _has_loops(graph: Graph) -> bool:
    return any(n["type"] == "loop" for n in graph.nodes.values())


def _flush(rows: list[StepRun]) -> None:
    """Insert rows not yet in the table, and write the final state of rows inserted earlier (a
    join needs the steps before it to exist, so a chain may insert before it finishes)."""
    fresh = [r for r in rows if r.pk is None]
    if fresh:
        StepRun.objects.bulk_create(fresh)
        for r in fresh:
            r._written = (r.status, r.output)  # type: ignore[attr-defined]
    for r in rows:
        written = getattr(r, "_written", None)
        if r not in fresh and written is not None and written != (r.status, r.output):
            StepRun.objects.filter(pk=r.pk).update(
                status=r.status,
                output=r.output,
                port=r.port,
                logs=r.logs,
                finished_at=r.finished_at,
                lease_expires_at=r.lease_expires_at,
            )
            r._written = (r.status, r.output)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- complete


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


def _preview(value: Any) -> Any:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 500 else text[:500] + "…"


def _ms(start: datetime | None, end: datetime) -> int | None:
    return int((end - start).total_seconds() * 1000) if start else None


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


# ----------------------------------------------------------------- failure


def _failed(
    step: StepRun, ctx: StepContext, message: str, *, retryable: bool = True, logs: list[str] | None = None
) -> tuple[str, list[int]]:
    all_logs = ctx.logs + (logs or []) + [f"error: {message}"]
    max_attempts, backoff = retry_of(ctx.node)
    if retryable and step.attempt < max_attempts:
        delay = backoff * (2 ** (step.attempt - 1))
        wake = timezone.now() + timedelta(seconds=delay)
        updated = StepRun.objects.filter(
            pk=step.pk, status=StepRun.Status.RUNNING, attempt=step.attempt
        ).update(
            status=StepRun.Status.PENDING,
            error=message[:5000],
            logs=(step.logs or []) + all_logs,
            lease_expires_at=None,
            wake_at=wake,
        )
        if updated:
            events.emit(
                step.run_id,
                "step_retry",
                {"attempt": step.attempt, "max_attempts": max_attempts, "error": message, "retry_in": delay},
                step_id=step.pk,
                node_id=step.node_id,
            )
            transaction.on_commit(lambda: dispatch(step.pk, countdown=delay or None))
        return "retrying", []
    return "failed", fail_step(
        step.pk, step.attempt, message, logs=all_logs, from_status=StepRun.Status.RUNNING
    )


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


# ----------------------------------------------------------------- waiting


def _wait(step: StepRun, ctx: StepContext, result: Result) -> tuple[str, list[int]]:
    wait = result.wait
    if wait is None:  # pragma: no cover - callers pass a result that waits
        raise ValueError("not a waiting result")
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().get(pk=step.run_id)
        updated = StepRun.objects.filter(
            pk=step.pk, status=StepRun.Status.RUNNING, attempt=step.attempt
        ).update(
            status=StepRun.Status.WAITING,
            wake_at=wait.wake_at,
            lease_expires_at=None,
            state=wait.state,
            logs=(step.logs or []) + result.logs,
        )
        if not updated or run.is_finished:
            return "skipped", []
        events.emit(
            run.pk,
            "step_waiting",
            {
                "until": wait.wake_at.isoformat() if wait.wake_at else None,
                **{k: v for k, v in wait.state.items() if k in ("approval", "child_run")},
            },
            step_id=step.pk,
            node_id=step.node_id,
        )
        _settle(run, graph_for(run.version_id))
    if wait.wake_at is not None:
        seconds = (wait.wake_at - timezone.now()).total_seconds()
        if seconds <= SHORT_WAIT_SECONDS:
            from workflows.tasks import wake_step

            wake_step.apply_async(args=[step.pk], countdown=max(0.0, seconds))
    return "waiting", []


def wake(step_id: int, now: datetime | None = None) -> list[int]:
    """A waiting step whose time has come: a delay ends, an approval times out."""
    now = now or timezone.now()
    step = StepRun.objects.filter(pk=step_id, status=StepRun.Status.WAITING, wake_at__lte=now).first()
    if step is None:
        return []
    run = WorkflowRun.objects.only("version_id").get(pk=step.run_id)
    graph = graph_for(run.version_id)
    if step.node_type == "approval":
        cfg = graph.config(step.node_id)
        port = cfg.get("on_timeout") or "timeout"
        expired = Approval.objects.filter(step_id=step.pk, decision=Approval.Decision.PENDING).update(
            decision=Approval.Decision.EXPIRED, decided_at=timezone.now()
        )
        if not expired:
            return []  # decided meanwhile: the decision moves it on
        result = Result(
            output={"decision": "expired", "timed_out": True}, port=port, logs=["approval timed out"]
        )
    elif step.node_type == "delay":
        result = Result(output=(step.state or {}).get("output", {"waited": True}), logs=["delay over"])
    else:
        return []
    return complete_step(step.pk, None, result, from_status=StepRun.Status.WAITING)


def resume_credit_paused(org_id: int) -> int:
    """Credits arrived: steps that paused for lack of them go back in the queue (their runs resume)."""
    ids = list(
        StepRun.objects.filter(
            run__organization_id=org_id,
            run__status__in=WorkflowRun.ACTIVE,
            status=StepRun.Status.WAITING,
            state__paused_for="credits",
        ).values_list("pk", flat=True)
    )
    resumed = []
    for step_id in ids:
        if StepRun.objects.filter(pk=step_id, status=StepRun.Status.WAITING).update(
            status=StepRun.Status.PENDING, state={}, wake_at=None
        ):
            resumed.append(step_id)
            step = StepRun.objects.only("run_id", "node_id").get(pk=step_id)
            events.emit(
                step.run_id, "step_retry", {"reason": "credits added"}, step_id=step_id, node_id=step.node_id
            )
    for step_id in resumed:
        dispatch(step_id)
    return len(resumed)


def resume_approval(approval_id: int) -> None:
    """An approval was decided (the service stored it once): finish its step down that branch."""
    approval = Approval.objects.select_related("decided_by").get(pk=approval_id)
    if approval.decision not in (Approval.Decision.APPROVED, Approval.Decision.REJECTED):
        return
    result = Result(
        output={
            "decision": approval.decision,
            "approved": approval.decision == Approval.Decision.APPROVED,
            "comment": approval.comment,
            "decided_by": approval.decided_by.email if approval.decided_by else None,
        },
        port=approval.decision,
        logs=[f"{approval.decision} by {approval.decided_by.email if approval.decided_by else 'someone'}"],
    )
    ids = complete_step(approval.step_id, None, result, from_status=StepRun.Status.WAITING)
    _dispatch_on_commit(ids)  # inline successors run on a worker, not in the request that decided


def child_done(parent_step_id: int, child_run_id: int) -> list[int]:
    child = WorkflowRun.objects.filter(pk=child_run_id).first()
    if child is None:
        return []
    step = StepRun.objects.filter(pk=parent_step_id, status=StepRun.Status.WAITING).first()
    if step is None:
        return []
    if child.status == WorkflowRun.Status.SUCCEEDED:
        result = Result(
            output=child.output,
            input_tokens=child.input_tokens,
            output_tokens=child.output_tokens,
            cost=child.cost,
            logs=[f"sub-workflow run {child.pk} succeeded"],
        )
        return complete_step(step.pk, None, result, from_status=StepRun.Status.WAITING)
    return fail_step(
        step.pk,
        None,
        f"The sub-workflow run {child.pk} {child.status}: {child.error or 'no reason given'}",
        logs=[],
        from_status=StepRun.Status.WAITING,
    )


# ------------------------------------------------------------------ cancel


def cancel_run(run_id: int, reason: str = "Cancelled") -> bool:
    with transaction.atomic():
        run = WorkflowRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.is_finished:
            return False
        _finish(run, WorkflowRun.Status.CANCELLED, reason)
    return True


# ------------------------------------------------------------------- sweep


def _close_orphaned_agent_run(step: StepRun) -> None:
    """The dead attempt's agent run would stay `running` forever: mark it failed with the reason."""
    agent_run_id = (step.state or {}).get("agent_run")
    if not agent_run_id:
        return
    from agents.models import AgentRun

    closed = AgentRun.objects.filter(
        pk=agent_run_id, status__in=[AgentRun.Status.QUEUED, AgentRun.Status.RUNNING]
    ).update(
        status=AgentRun.Status.FAILED,
        error="The workflow worker running this agent stopped (its lease expired).",
        finished_at=timezone.now(),
    )
    if closed:
        from billing.ledger import release

        release(
            org=step.run.organization_id,
            reservation_key=f"run:{agent_run_id}:reserve",
            description=f"Run {agent_run_id} lost with its worker",
        )


def sweep(now: datetime | None = None) -> dict[str, int]:
    """The beat task: re-queue or fail steps whose lease ran out (a crashed worker, a hung node), wake
    due delays and approval timeouts, and re-send pending steps whose message was lost."""
    now = now or timezone.now()
    counts = {"requeued": 0, "failed": 0, "woken": 0, "resent": 0}
    for step in StepRun.objects.filter(
        status=StepRun.Status.RUNNING, lease_expires_at__lt=now
    ).select_related("run")[:500]:
        graph = graph_for(step.run.version_id)
        node = graph.nodes.get(step.node_id, {"type": step.node_type})
        max_attempts, _ = retry_of(node)
        message = (
            f"The step did not finish within its lease ({timeout_of(node)} s timeout): "
            "the worker crashed or the node hung."
        )
        _close_orphaned_agent_run(step)
        if step.attempt < max_attempts:
            if StepRun.objects.filter(pk=step.pk, status=StepRun.Status.RUNNING, attempt=step.attempt).update(
                status=StepRun.Status.PENDING,
                error=message,
                lease_expires_at=None,
                logs=(step.logs or []) + [f"lease expired on attempt {step.attempt}; re-queued"],
            ):
                events.emit(
                    step.run_id,
                    "step_retry",
                    {"attempt": step.attempt, "error": message},
                    step_id=step.pk,
                    node_id=step.node_id,
                )
                dispatch(step.pk)
                counts["requeued"] += 1
        else:
            for sid in fail_step(
                step.pk, step.attempt, message, logs=["lease expired"], from_status=StepRun.Status.RUNNING
            ):
                dispatch(sid)
            counts["failed"] += 1
    for step_id in StepRun.objects.filter(status=StepRun.Status.WAITING, wake_at__lte=now).values_list(
        "pk", flat=True
    )[:500]:
        for sid in wake(step_id, now):
            dispatch(sid)
        counts["woken"] += 1
    stale = now - timedelta(seconds=60)
    for step_id in (
        StepRun.objects.filter(
            status=StepRun.Status.PENDING, created_at__lt=stale, run__status__in=WorkflowRun.ACTIVE
        )
        .filter(Q(wake_at__isnull=True) | Q(wake_at__lt=stale))
        .values_list("pk", flat=True)[:500]
    ):
        dispatch(step_id)
        counts["resent"] += 1
    return counts
