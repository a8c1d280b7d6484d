"""The beat sweeper: due delays, approval timeouts, expired leases, orphaned agent runs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from workflows import events
from workflows.engine.common import dispatch, graph_for, retry_of, timeout_of
from workflows.engine.flow import fail_step
from workflows.engine.waiting import wake
from workflows.models import StepRun, WorkflowRun


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
        from billing.hooks import run_keys
        from billing.ledger import release

        release(
            org=step.run.organization_id,
            reservation_key=run_keys(int(agent_run_id))[0],
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
