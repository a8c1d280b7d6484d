"""Running a chain of pure, fast nodes in the task that finished the step before them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from config import prepared
from config.prepared import Prepared
from workflows import events
from workflows.engine.common import _dispatch_on_commit, _has_loops, _json_safe, _ms, _preview, graph_for
from workflows.engine.flow import _arrive_at_join, _child_done_later, _finish, _settle
from workflows.engine.steps import _error_of, _failed, _scope
from workflows.engine.types import (
    _UNSET,
    DEFAULT_TIMEOUT,
    LEASE_GRACE_SECONDS,
    MAX_STEPS_PER_RUN,
    Result,
    StepContext,
)
from workflows.graph import NODE_TYPES
from workflows.models import StepRun, WorkflowRun

# Read on every step that finishes: compiled once.
_LOCKED_RUN = Prepared(lambda pk: WorkflowRun.objects.select_for_update().filter(pk=pk), int)
_OPEN_STEP = Prepared(
    lambda run_id: StepRun.objects.filter(run_id=run_id, status__in=StepRun.ACTIVE).only("id"), int
)


def _run_chain(first: StepRun, first_result: Result | None) -> tuple[str, list[int]]:
    """Finish `first` (running, claimed by this task) and run the pure nodes after it, all in one
    transaction under the run's lock: one UPDATE for the claimed step, one INSERT for the steps
    that follow (pure ones already finished, others pending), one INSERT for their events and one
    UPDATE for the run (these two with the COMMIT, unless the run is settled after them). Returns
    ids this task should run next (released joins, extra pure branches)."""
    from workflows.models import WorkflowRunEvent
    from workflows.nodes import EXECUTORS

    now = timezone.now()
    follow: list[int] = []
    failing: tuple[StepRun, str, bool, list[str]] | None = None
    with transaction.atomic():
        run = _LOCKED_RUN.first(first.run_id)
        if run is None:
            raise WorkflowRun.DoesNotExist(f"workflow run {first.run_id} is gone")
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
        if first.status == StepRun.Status.SUCCEEDED and not prepared.update(
            StepRun,
            where={"id": first.pk, "status": StepRun.Status.RUNNING, "attempt": first.attempt},
            values={
                "status": first.status,
                "output": first.output,
                "port": first.port,
                "logs": first.logs,
                "input_tokens": first.input_tokens,
                "output_tokens": first.output_tokens,
                "cost": first.cost,
                "finished_at": first.finished_at,
                "lease_expires_at": None,
                "wake_at": None,
                "error": "",
            },
        ):
            transaction.set_rollback(True)
            return "stale", []
        _flush(new_rows)
        finishing = False
        if failing is None and not limit_error and not follow and not queued and not extra_pure:
            # The common end of a run: nothing left open means it succeeded, in this same write.
            finishing = _OPEN_STEP.first(run.pk) is None
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
        # When nothing below reads or writes the run in this transaction (no `_finish`, no `_settle`),
        # its events and its row go out with the COMMIT, in one flight: two round trips fewer under
        # the run's lock.
        settling = bool(limit_error) or (
            failing is None and not finishing and not (queued or extra_pure or follow)
        )
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
        prepared.insert(event_rows, at_commit=not settling)
        run_fields.update(context=context, last_seq=seq)
        added = {}
        if tokens[0] or tokens[1] or tokens[2]:
            added = {"input_tokens": tokens[0], "output_tokens": tokens[1], "cost": tokens[2]}
        if end_output is not _UNSET and not finishing:
            run_fields["output"] = end_output
        prepared.update(
            WorkflowRun, where={"id": run.pk}, values=run_fields, add=added, at_commit=not settling
        )
        run.last_seq = seq
        for event in event_rows:
            events.publish(run.pk, event.as_dict())
        if limit_error:
            _finish(run, WorkflowRun.Status.FAILED, limit_error)
        elif settling:
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


def _flush(rows: list[StepRun]) -> None:
    """Insert rows not yet in the table, and write the final state of rows inserted earlier (a
    join needs the steps before it to exist, so a chain may insert before it finishes)."""
    fresh = [r for r in rows if r.pk is None]
    if fresh:
        prepared.insert(fresh)
        for r in fresh:
            r._written = (r.status, r.output)  # type: ignore[attr-defined]
    for r in rows:
        written = getattr(r, "_written", None)
        if r not in fresh and written is not None and written != (r.status, r.output):
            prepared.update(
                StepRun,
                where={"id": r.pk},
                values={
                    "status": r.status,
                    "output": r.output,
                    "port": r.port,
                    "logs": r.logs,
                    "finished_at": r.finished_at,
                    "lease_expires_at": r.lease_expires_at,
                },
            )
            r._written = (r.status, r.output)  # type: ignore[attr-defined]
