"""Waiting steps: approvals, delays, sub-workflows and credit pauses are database states; these
functions park a step and wake it when its time or its event comes."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from workflows import events
from workflows.engine.common import _dispatch_on_commit, dispatch, graph_for
from workflows.engine.flow import _settle, complete_step, fail_step
from workflows.engine.types import SHORT_WAIT_SECONDS, Result, StepContext
from workflows.models import Approval, StepRun, WorkflowRun


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
