"""Shared plumbing for the workflows API: loading through the org, and mapping refusals to the envelope.

The org and role checks, `doc`, pagination and `acting_user` are the agents API's (agents/api/common.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Max, QuerySet
from rest_framework.exceptions import ValidationError

from accounts.permissions import OrgContext
from accounts.services import ServiceError
from config.api import ApiError
from workflows.graph import GraphError
from workflows.models import Workflow, WorkflowRun, WorkflowVersion

T = TypeVar("T")


def graph_field_errors(exc: GraphError) -> ValidationError:
    """Errors per node (`{"draft": [...], "graph": [...]}`) become request fields (`graph.nodes.draft`)."""
    return ValidationError(
        {
            ("graph" if key == "graph" else f"graph.nodes.{key}"): messages
            for key, messages in exc.errors.items()
        },
        code="invalid_graph",
    )


def call(fn: Callable[..., T], **kwargs: Any) -> T:
    """Run a service and map its refusal (a bad graph, a business rule) to the API envelope."""
    try:
        return fn(**kwargs)
    except GraphError as exc:
        raise graph_field_errors(exc)
    except ServiceError as exc:
        raise ApiError(exc.status, exc.code, str(exc))


def workflows_for(ctx: OrgContext) -> QuerySet[Workflow]:
    return (
        Workflow.objects.for_org(ctx.org)
        .select_related("published_version", "created_by")
        .annotate(latest_number=Max("versions__number"))
    )


def workflow_or_404(ctx: OrgContext, workflow_id: int) -> Workflow:
    workflow = workflows_for(ctx).filter(pk=workflow_id).first()
    if workflow is None:
        raise ApiError(404, "not_found", "No such workflow in this organization.")
    return workflow


def version_or_404(workflow: Workflow, number: int) -> WorkflowVersion:
    version = workflow.versions.filter(number=number).select_related("created_by", "workflow").first()
    if version is None:
        raise ApiError(404, "not_found", f"Workflow {workflow.pk} has no version {number}.")
    return version


def run_or_404(ctx: OrgContext, run_id: int) -> WorkflowRun:
    run = WorkflowRun.objects.for_org(ctx.org).select_related("version").filter(pk=run_id).first()
    if run is None:
        raise ApiError(404, "not_found", "No such workflow run in this organization.")
    return run
