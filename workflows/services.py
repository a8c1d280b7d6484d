"""Workflow services: definitions, versions, publishing, triggers, runs, approvals, templates.

Views and the API call these; they never write workflow rows themselves. A refusal is a
`ServiceError` (status and code for the API envelope); a bad graph is a `GraphError` with errors per node.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Organization, Role, User, role_at_least
from accounts.services import ServiceError, audit_log_record
from integrations.vault import vault_decrypt, vault_encrypt
from workflows import engine, schedule
from workflows.graph import Graph, GraphError, validate_graph
from workflows.models import Approval, StepRun, Workflow, WorkflowRun, WorkflowTemplate, WorkflowVersion

logger = logging.getLogger(__name__)

STARTER_GRAPH: dict[str, Any] = {
    "nodes": [
        {
            "id": "start",
            "type": "trigger",
            "name": "Start",
            "config": {"kind": "manual"},
            "position": {"x": 60, "y": 120},
        },
        {
            "id": "output",
            "type": "end",
            "name": "Output",
            "config": {"output": "{{ input }}"},
            "position": {"x": 420, "y": 120},
        },
    ],
    "edges": [{"source": "start", "target": "output", "port": "out"}],
}
MAX_INPUT_BYTES = 256 * 1024


# ------------------------------------------------------------ definitions


def workflow_create(
    *,
    org: Organization,
    by: User | None,
    name: str,
    description: str = "",
    graph: dict[str, Any] | None = None,
) -> Workflow:
    name = (name or "").strip()
    if not name:
        raise ServiceError("Give the workflow a name.", code="name_required")
    from billing import limits

    with transaction.atomic():
        limits.check(org, "workflows")  # held until the commit: two requests cannot both take the last slot
        workflow = Workflow.objects.create(
            organization=org, name=name[:100], description=(description or "")[:500], created_by=by
        )
        version_create(workflow=workflow, by=by, graph=graph or STARTER_GRAPH, note="Created")
        audit_log_record(action="workflow.create", actor=by, organization=org, target=workflow)
    return workflow


def workflow_update(
    *, workflow: Workflow, by: User | None, name: str | None = None, description: str | None = None
) -> Workflow:
    if name is not None:
        if not name.strip():
            raise ServiceError("Give the workflow a name.", code="name_required")
        workflow.name = name.strip()[:100]
    if description is not None:
        workflow.description = description[:500]
    workflow.save(update_fields=["name", "description", "updated_at"])
    return workflow


def version_create(*, workflow: Workflow, by: User | None, graph: Any, note: str = "") -> WorkflowVersion:
    """Validate and save the graph as a new draft version. Raises GraphError with errors per node."""
    validate_graph(graph, org=workflow.organization_id, workflow=workflow)
    clean = {"nodes": graph["nodes"], "edges": graph.get("edges", [])}
    with transaction.atomic():
        last = (
            WorkflowVersion.objects.select_for_update()
            .filter(workflow=workflow)
            .order_by("-number")
            .values_list("number", flat=True)
            .first()
        )
        version = WorkflowVersion.objects.create(
            organization_id=workflow.organization_id,
            workflow=workflow,
            number=(last or 0) + 1,
            graph=clean,
            note=note[:200],
            created_by=by,
        )
        Workflow.objects.filter(pk=workflow.pk).update(updated_at=timezone.now())
    return version


def _trigger_summary(workflow: Workflow, graph: Graph) -> list[dict[str, Any]]:
    triggers = []
    for nid in graph.triggers():
        cfg = graph.config(nid)
        item: dict[str, Any] = {"node": nid, "kind": cfg.get("kind")}
        if cfg.get("kind") == "schedule":
            item.update(cron=cfg.get("cron"), timezone=cfg.get("timezone") or "UTC")
        if cfg.get("kind") == "integration":
            item.update(event=cfg.get("event"))
        if cfg.get("kind") == "webhook":
            item.update(path=f"/hooks/workflows/{workflow.webhook_token}")
        triggers.append(item)
    return triggers


def workflow_publish(
    *, workflow: Workflow, by: User | None, version: WorkflowVersion | None = None
) -> Workflow:
    """Make a version (the latest by default) the one that runs; sync schedules and the webhook secret."""
    if workflow.status == Workflow.Status.ARCHIVED:
        raise ServiceError("Restore the workflow before publishing it.", code="archived", status=409)
    version = version or workflow.latest_version()
    if version is None:
        raise ServiceError("Save the workflow first.", code="no_version", status=409)
    graph = validate_graph(version.graph, org=workflow.organization_id, workflow=workflow)
    with transaction.atomic():
        workflow.published_version = version
        workflow.status = Workflow.Status.ACTIVE
        workflow.triggers = _trigger_summary(workflow, graph)
        fields = ["published_version", "status", "triggers", "updated_at"]
        if graph.triggers("webhook") and not workflow.webhook_secret:
            workflow.webhook_secret = vault_encrypt(secrets.token_urlsafe(32))
            fields.append("webhook_secret")
        workflow.save(update_fields=fields)
        schedule.sync(workflow, [t for t in workflow.triggers if t["kind"] == "schedule"])
        audit_log_record(
            action="workflow.publish",
            actor=by,
            organization=workflow.organization,
            target=workflow,
            version=version.number,
        )
    return workflow


def workflow_rollback(*, workflow: Workflow, by: User | None, number: int) -> Workflow:
    version = workflow.versions.filter(number=number).first()
    if version is None:
        raise ServiceError(f"This workflow has no version {number}.", code="not_found", status=404)
    return workflow_publish(workflow=workflow, by=by, version=version)


def workflow_archive(*, workflow: Workflow, by: User | None) -> Workflow:
    with transaction.atomic():
        workflow.status = Workflow.Status.ARCHIVED
        workflow.save(update_fields=["status", "updated_at"])
        schedule.sync(workflow, [])
        audit_log_record(
            action="workflow.archive", actor=by, organization=workflow.organization, target=workflow
        )
    return workflow


def workflow_restore(*, workflow: Workflow, by: User | None) -> Workflow:
    """Back from the archive; it counts against the plan's workflow limit again (402 when full)."""
    from billing import limits

    with transaction.atomic():
        if workflow.status == Workflow.Status.ARCHIVED:
            limits.check(workflow.organization_id, "workflows")
        workflow.status = Workflow.Status.ACTIVE if workflow.published_version_id else Workflow.Status.DRAFT
        workflow.save(update_fields=["status", "updated_at"])
        if workflow.published_version_id:
            schedule.sync(workflow, [t for t in workflow.triggers if t["kind"] == "schedule"])
    return workflow


def workflow_delete(*, workflow: Workflow, by: User | None) -> None:
    if workflow.runs.filter(status__in=WorkflowRun.ACTIVE).exists():
        raise ServiceError(
            "Cancel the runs in progress before deleting this workflow.", code="busy", status=409
        )
    with transaction.atomic():
        schedule.sync(workflow, [])
        audit_log_record(
            action="workflow.delete",
            actor=by,
            organization=workflow.organization,
            target=workflow,
            name=workflow.name,
        )
        WorkflowRun.objects.filter(workflow=workflow).delete()
        workflow.delete()


# ----------------------------------------------------------------- webhook


def webhook_secret(workflow: Workflow) -> str | None:
    """The webhook's HMAC secret in clear, for its owner's trigger panel. None until published with one."""
    return vault_decrypt(workflow.webhook_secret) if workflow.webhook_secret else None


def webhook_rotate(*, workflow: Workflow, by: User | None) -> str:
    secret = secrets.token_urlsafe(32)
    workflow.webhook_secret = vault_encrypt(secret)
    workflow.save(update_fields=["webhook_secret", "updated_at"])
    audit_log_record(
        action="workflow.webhook_rotate", actor=by, organization=workflow.organization, target=workflow
    )
    return secret


def webhook_signature(secret: str, body: bytes) -> str:
    """The value of the `X-AgentOS-Signature` header: `sha256=<hex HMAC-SHA256 of the raw body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_verify(workflow: Workflow, body: bytes, header: str | None) -> bool:
    if not header or not workflow.webhook_secret:
        return False
    expected = webhook_signature(webhook_secret(workflow) or "", body)
    return hmac.compare_digest(expected, header.strip())


# -------------------------------------------------------------------- runs


def run_start(
    *,
    workflow: Workflow,
    by: User | None,
    input: Any,
    source: str = WorkflowRun.Source.MANUAL,
    version: WorkflowVersion | None = None,
    trigger_node: str | None = None,
    parent_step: StepRun | None = None,
    cost_capped: bool | None = None,
    keys: tuple[int, int] | None = None,
) -> WorkflowRun:
    """Start a run of the published version (or `version`, for a test run of a draft). A caller that
    loaded the workflow with `caps.has_cap()` and took the run's and its trigger step's keys
    (`prepared.next_id`) in that read passes them as `cost_capped` and `keys`: no reads of their own."""
    if workflow.status == Workflow.Status.ARCHIVED:
        raise ServiceError("This workflow is archived; restore it to run it.", code="archived", status=409)
    version = version or workflow.published_version
    if version is None:
        raise ServiceError(
            "Publish the workflow before running it (or use a test run).", code="not_published", status=409
        )
    if input is None:
        input = {}
    if isinstance(input, str):
        input = {"text": input}
    if not isinstance(input, dict):
        raise ServiceError("The run input is an object (or a text).", code="invalid_input")
    import json

    if len(json.dumps(input, default=str)) > MAX_INPUT_BYTES:
        raise ServiceError("The run input is too large (256 KB at most).", code="input_too_large", status=413)
    from billing import caps

    caps.check_workflow_start(workflow=workflow, version=version, capped=cost_capped)  # its cost cap (402)
    _check_credits(workflow, version)
    return engine.start_run(
        workflow=workflow,
        version=version,
        user=by,
        input=input,
        source=source,
        trigger_node=trigger_node,
        parent_step=parent_step,
        keys=keys,
    )


def _check_credits(workflow: Workflow, version: WorkflowVersion) -> None:
    """Before starting, the organization must hold what one pass of the agent steps is estimated to
    cost (402 otherwise). Each step still reserves its own run; a workflow that runs out mid-way
    (a loop, other spending) pauses and resumes after a top-up."""
    from billing.estimates import workflow_estimate
    from billing.ledger import balance

    estimate = workflow_estimate(org_id=workflow.organization_id, graph=version.graph)
    if estimate.credits <= 0:
        return
    available = balance(workflow.organization_id)
    if available < estimate.credits:
        raise ServiceError(
            f"Not enough credits: one pass of this workflow's agent steps needs about "
            f"{estimate.credits:.2f} and the organization has {available:.2f}. Add credits to continue.",
            code="insufficient_credits",
            status=402,
        )


def run_cancel(*, run: WorkflowRun, by: User | None) -> WorkflowRun:
    if run.is_finished:
        raise ServiceError(
            f"This run already {run.status}; there is nothing to cancel.", code="finished", status=409
        )
    engine.cancel_run(run.pk, reason=f"Cancelled by {by.email}" if by else "Cancelled")
    run.refresh_from_db()
    return run


# --------------------------------------------------------------- approvals


def approval_can_decide(approval: Approval, user: User | None) -> bool:
    """Assignees decide; with no assignees, any member (not a viewer) of the org may."""
    if user is None:
        return False
    role = approval.organization.role_of(user)
    if role is None:
        return False
    assignees = list(approval.assignees.values_list("pk", flat=True))
    if assignees:
        return user.pk in assignees or role_at_least(role, Role.ADMIN)
    return role_at_least(role, Role.MEMBER)


def approval_decide(*, approval: Approval, by: User | None, approved: bool, comment: str = "") -> Approval:
    """Record the decision (once) and continue the run down the approved or rejected branch."""
    if not approval_can_decide(approval, by):
        raise ServiceError(
            "You are not one of the people who can decide this approval.", code="not_assignee", status=403
        )
    decision = Approval.Decision.APPROVED if approved else Approval.Decision.REJECTED
    updated = Approval.objects.filter(pk=approval.pk, decision=Approval.Decision.PENDING).update(
        decision=decision, decided_by=by, comment=(comment or "")[:2000], decided_at=timezone.now()
    )
    if not updated:
        approval.refresh_from_db()
        raise ServiceError(
            f"This approval was already {approval.decision}.", code="already_decided", status=409
        )
    engine.resume_approval(approval.pk)
    approval.refresh_from_db()
    return approval


def approval_token(approval: Approval, user: User) -> str:
    """A signed token for the email link of one assignee; valid until the approval expires (7 days max)."""
    from django.core import signing

    return signing.dumps({"a": approval.pk, "u": user.pk}, salt="workflows.approval")


def approval_from_token(token: str) -> tuple[Approval, User] | None:
    from django.core import signing

    try:
        data = signing.loads(token, salt="workflows.approval", max_age=7 * 86400)
        approval = Approval.objects.select_related("organization", "run__workflow").get(pk=int(data["a"]))
        user = User.objects.get(pk=int(data["u"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError, Approval.DoesNotExist, User.DoesNotExist):
        return None
    return approval, user


# --------------------------------------------------------------- templates


def template_install(*, template: WorkflowTemplate, org: Organization, by: User | None) -> Workflow:
    """Copy a gallery template into the org. Agent nodes that name an agent template get an agent
    created from it (on the org's default model) the first time."""
    from workflows.templates_catalog import materialize

    graph = materialize(template.graph, org=org, by=by)
    try:
        with transaction.atomic():
            workflow = workflow_create(
                org=org, by=by, name=template.name, description=template.description[:500], graph=graph
            )
            workflow.template = template
            workflow.save(update_fields=["template"])
            WorkflowTemplate.objects.filter(pk=template.pk).update(installs=F("installs") + 1)
    except GraphError:
        raise
    except IntegrityError as exc:  # pragma: no cover - defensive
        raise ServiceError(f"Could not install the template ({exc}).", code="install_failed")
    return workflow
