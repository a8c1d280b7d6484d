"""Run history of a workflow, and one run's timeline: every step with its status, timings, input and
output, logs and cost, updated live over `/ws/workflow-runs/<id>/` while the run is going."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role, User
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from workflows import services
from workflows.graph import NODE_TYPES
from workflows.models import StepRun, WorkflowRun
from workflows.views.common import can_write, run_or_404, workflow_or_404

PAGE_SIZE = 25


@org_role_required()
def runs(request: AuthedHttpRequest, workflow_id: int) -> TemplateResponse:
    workflow = workflow_or_404(request, workflow_id)
    qs = WorkflowRun.objects.for_org(request.org).filter(workflow=workflow).select_related("version", "user")
    status = request.GET.get("status", "")
    if status in WorkflowRun.Status.values:
        qs = qs.filter(status=status)
    else:
        status = ""
    page = Paginator(qs.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return TemplateResponse(
        request,
        "workflows/runs.html",
        {
            "workflow": workflow,
            "page": page,
            "status": status,
            "statuses": WorkflowRun.Status.choices,
            "can_write": can_write(request),
        },
    )


def node_info(graph: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Node id -> name, type label and icon, from the version the run used."""
    info: dict[str, dict[str, str]] = {}
    for node in graph.get("nodes", []):
        spec = NODE_TYPES.get(node.get("type", ""))
        info[node.get("id", "")] = {
            "name": node.get("name") or (spec.label if spec else node.get("id", "")),
            "label": spec.label if spec else node.get("type", ""),
            "icon": spec.icon if spec else "◆",
        }
    return info


def step_context(step: StepRun, info: dict[str, dict[str, str]], user: User | None) -> dict[str, Any]:
    """What `workflows/_step.html` needs for one step; shared by the page and the websocket consumer."""
    approval = getattr(step, "approval", None)
    return {
        "step": step,
        "node": info.get(step.node_id) or {"name": step.node_id, "label": step.node_type, "icon": "◆"},
        "approval": approval,
        "can_decide": bool(approval and approval.is_pending and services.approval_can_decide(approval, user)),
    }


def steps_of(run: WorkflowRun) -> list[StepRun]:
    return list(run.steps.select_related("approval").order_by("created_at", "id"))


@org_role_required()
def run_detail(request: AuthedHttpRequest, run_id: int) -> TemplateResponse:
    run = run_or_404(request, run_id)
    after = run.last_seq  # read before the steps: anything later is replayed by the socket
    info = node_info(run.version.graph)
    steps = [step_context(step, info, request.user) for step in steps_of(run)]
    return TemplateResponse(
        request,
        "workflows/run_detail.html",
        {
            "run": run,
            "workflow": run.workflow,
            "steps": steps,
            "after": after,
            "can_write": can_write(request),
        },
    )


@org_role_required(Role.MEMBER)
@require_POST
def run_cancel(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = run_or_404(request, run_id)
    try:
        services.run_cancel(run=run, by=request.user)
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Run #{run.pk} is cancelled.")
    if request.htmx:  # the button came over the websocket: reload the page to show the outcome
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return redirect("workflows_run_detail", run_id=run.pk)
