"""Access helpers shared by the workflows pages. Every lookup starts from request.org; a miss is a 404."""

from __future__ import annotations

from django.http import Http404, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import Role, role_at_least
from accounts.types import AuthedHttpRequest
from workflows.models import Workflow, WorkflowRun


def can_write(request: AuthedHttpRequest) -> bool:
    return bool(request.org_role and role_at_least(request.org_role, Role.MEMBER))


def workflow_or_404(request: AuthedHttpRequest, workflow_id: int) -> Workflow:
    workflow = (
        Workflow.objects.for_org(request.org)
        .select_related("published_version")
        .filter(pk=workflow_id)
        .first()
    )
    if workflow is None:
        raise Http404("No such workflow.")
    return workflow


def run_or_404(request: AuthedHttpRequest, run_id: int) -> WorkflowRun:
    run = (
        WorkflowRun.objects.for_org(request.org)
        .select_related("workflow", "version", "user")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise Http404("No such run.")
    return run


def back(request: AuthedHttpRequest, fallback: str) -> HttpResponseRedirect:
    """Redirect to the form's `next` when it is one of our URLs, else to `fallback`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(fallback)
