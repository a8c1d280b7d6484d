"""The workflows list, creating a workflow, and running one from the list."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from workflows import services
from workflows.forms import WorkflowForm, parse_run_input
from workflows.models import Workflow, WorkflowRun, WorkflowTemplate
from workflows.views.common import back, can_write, workflow_or_404

PAGE_SIZE = 20


def _index_context(request: AuthedHttpRequest, form: WorkflowForm) -> dict[str, object]:
    status = request.GET.get("status", "")
    workflows = Workflow.objects.for_org(request.org)
    if status in Workflow.Status.values:
        workflows = workflows.filter(status=status)
    else:
        status = ""
        workflows = workflows.exclude(status=Workflow.Status.ARCHIVED)
    last_run = WorkflowRun.objects.filter(workflow=OuterRef("pk")).order_by("-created_at", "-pk")
    workflows = workflows.annotate(
        runs_count=Count("runs"),
        last_run_status=Subquery(last_run.values("status")[:1]),
        last_run_id=Subquery(last_run.values("pk")[:1]),
    ).order_by("-updated_at", "-pk")
    return {
        "page": Paginator(workflows, PAGE_SIZE).get_page(request.GET.get("page")),
        "status": status,
        "statuses": Workflow.Status.choices,
        "form": form,
        "can_write": can_write(request),
        "template_count": WorkflowTemplate.objects.filter(is_published=True).count(),
    }


@org_role_required()
def index(request: AuthedHttpRequest) -> TemplateResponse:
    return TemplateResponse(request, "workflows/index.html", _index_context(request, WorkflowForm()))


@org_role_required(Role.MEMBER)
@require_POST
def create(request: AuthedHttpRequest) -> HttpResponse:
    form = WorkflowForm(request.POST)
    if form.is_valid():
        try:
            workflow = services.workflow_create(
                org=request.org,
                by=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ServiceError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"{workflow.name} is ready: add steps, save, and try a test run.")
            return redirect("workflows_builder", workflow_id=workflow.pk)
    return TemplateResponse(request, "workflows/index.html", _index_context(request, form), status=400)


@org_role_required()
def detail(request: AuthedHttpRequest, workflow_id: int) -> HttpResponse:
    workflow = workflow_or_404(request, workflow_id)
    return redirect("workflows_builder", workflow_id=workflow.pk)


@org_role_required(Role.MEMBER)
@require_POST
def run_now(request: AuthedHttpRequest, workflow_id: int) -> HttpResponse:
    """Run the published version by hand, with an optional text or JSON input."""
    workflow = workflow_or_404(request, workflow_id)
    try:
        data = parse_run_input(request.POST.get("input", ""))
        run = services.run_start(
            workflow=workflow, by=request.user, input=data, source=WorkflowRun.Source.MANUAL
        )
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    except ServiceError as exc:
        from billing.views.prompts import credits_required, is_billing_refusal

        if is_billing_refusal(exc):  # out of credits or a cost cap used up: the way out, not just an error
            return credits_required(
                request, exc, reverse("workflows_builder", kwargs={"workflow_id": workflow.pk})
            )
        messages.error(request, str(exc))
    else:
        return redirect("workflows_run_detail", run_id=run.pk)
    return back(request, reverse("workflows_index"))
