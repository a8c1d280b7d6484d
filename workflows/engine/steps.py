"""What a step runs with (its template scope) and what happens when it raises (retry or fail)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from workflows import events
from workflows.engine.common import dispatch, retry_of
from workflows.engine.flow import fail_step
from workflows.engine.types import NodeError, StepContext
from workflows.graph import Graph
from workflows.models import StepRun, WorkflowRun

logger = logging.getLogger(__name__)


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


def _error_of(exc: Exception, node: dict[str, Any]) -> tuple[str, bool, list[str]]:
    """A node's exception as (message for people, retryable, logs)."""
    from workflows.expressions import ExpressionError

    if isinstance(exc, NodeError):
        return str(exc), exc.retryable, exc.logs
    if isinstance(exc, ExpressionError):
        return f"Template or expression error: {exc}", False, []
    logger.exception("workflow node %s crashed", node.get("id"))
    return f"Internal error in the {node['type']} node ({type(exc).__name__}: {exc}).", True, []


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
