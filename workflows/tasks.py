"""Thin tasks: take ids, re-check state in the database, call the engine. Each is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from workflows import engine

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def run_step(step_id: int) -> str:
    # The engine claims the step (pending -> running) with a conditional update: a repeat does nothing.
    return engine.execute_step(step_id)


@shared_task(acks_late=True, ignore_result=True)
def wake_step(step_id: int) -> int:
    """A delay is over or an approval timed out (the sweeper does the same for long waits)."""
    ids = engine.wake(step_id)
    for sid in ids:
        engine.execute_step(sid)
    return len(ids)


@shared_task(acks_late=True, ignore_result=True)
def child_finished(parent_step_id: int, child_run_id: int) -> None:
    for sid in engine.child_done(parent_step_id, child_run_id):
        engine.execute_step(sid)


@shared_task(ignore_result=True)
def sweep() -> dict[str, int]:
    """Beat, every few seconds: expired leases, due delays and approval timeouts, lost messages."""
    return engine.sweep()


@shared_task(acks_late=True, ignore_result=True)
def scheduled_run(workflow_id: int, node_id: str) -> int | None:
    """Beat fires a schedule trigger. The workflow must still be active with that trigger published."""
    from accounts.services import ServiceError
    from workflows.models import Workflow, WorkflowRun
    from workflows.services import run_start

    workflow = Workflow.objects.select_related("published_version").filter(pk=workflow_id).first()
    if workflow is None or workflow.status != Workflow.Status.ACTIVE or workflow.published_version is None:
        return None
    if not any(t.get("node") == node_id and t.get("kind") == "schedule" for t in workflow.triggers):
        return None
    try:
        run = run_start(
            workflow=workflow,
            by=None,
            input={"scheduled": True},
            source=WorkflowRun.Source.SCHEDULE,
            trigger_node=node_id,
        )
    except (ServiceError, ValueError) as exc:
        logger.warning("scheduled run of workflow %s not started: %s", workflow_id, exc)
        return None
    return run.pk


@shared_task(ignore_result=True)
def approval_notify(approval_id: int) -> int:
    """Tell the assignees (or the org's members when there are none): in-app, and an email with a
    signed link that decides without signing in."""
    from accounts.models import Membership, Role
    from community.services import notify
    from workflows.models import Approval
    from workflows.services import approval_token

    approval = Approval.objects.select_related("run__workflow").filter(pk=approval_id).first()
    if approval is None or not approval.is_pending:
        return 0
    users = list(approval.assignees.all())
    if not users:
        users = [
            m.user
            for m in Membership.objects.filter(
                organization_id=approval.organization_id, role__in=[Role.OWNER, Role.ADMIN, Role.MEMBER]
            ).select_related("user")
        ]
    base = getattr(settings, "SITE_URL", "").rstrip("/")
    for user in users:
        link = base + reverse("workflows_approval_link", args=[approval_token(approval, user)])
        notify(
            user_id=user.pk,
            organization_id=approval.organization_id,
            text=f"Approval needed: {approval.title} ({approval.run.workflow.name})",
            url=reverse("workflows_approvals"),
            kind="approval",
        )
        send_mail(
            subject=f"Approval needed: {approval.title}",
            message=(
                f"The workflow “{approval.run.workflow.name}” is waiting for your decision.\n\n"
                f"{approval.message}\n\nDecide here: {link}\n"
            ),
            from_email=None,
            recipient_list=[user.email],
            fail_silently=True,
        )
    return len(users)
