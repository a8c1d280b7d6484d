"""The approvals inbox, deciding from the web, and the page behind the emailed link.

Who may decide is the service's rule (`approval_can_decide`); the pages only show what it allows and
report its refusals (403 not an assignee, 409 decided already) in place.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts.decorators import org_role_required
from accounts.models import User
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from workflows import services
from workflows.forms import DecisionForm
from workflows.models import Approval
from workflows.views.common import back

INBOX_LIMIT = 100


def _inbox_context(request: AuthedHttpRequest, error: str = "") -> dict[str, object]:
    org_approvals = Approval.objects.for_org(request.org).select_related(
        "run__workflow", "step", "decided_by", "organization"
    )
    pending = [
        a
        for a in org_approvals.filter(decision=Approval.Decision.PENDING).order_by("created_at", "pk")[
            :INBOX_LIMIT
        ]
        if services.approval_can_decide(a, request.user)
    ]
    decided = org_approvals.exclude(decision=Approval.Decision.PENDING).order_by("-decided_at", "-pk")[:20]
    return {"pending": pending, "decided": decided, "error": error, "now": timezone.now()}


@org_role_required()
def inbox(request: AuthedHttpRequest) -> TemplateResponse:
    return TemplateResponse(request, "workflows/approvals.html", _inbox_context(request))


@org_role_required()
@require_POST
def decide(request: AuthedHttpRequest, approval_id: int) -> HttpResponse:
    approval = (
        Approval.objects.for_org(request.org)
        .select_related("organization", "run")
        .filter(pk=approval_id)
        .first()
    )
    if approval is None:
        raise Http404("No such approval.")
    form = DecisionForm(request.POST)
    try:
        if not form.is_valid():
            raise ServiceError("Choose approve or reject.", code="invalid")
        approval = services.approval_decide(
            approval=approval,
            by=request.user,
            approved=form.cleaned_data["decision"] == "approve",
            comment=form.cleaned_data["comment"],
        )
    except ServiceError as exc:
        if request.htmx:
            refused = TemplateResponse(request, "workflows/_alert.html", {"error": str(exc)})
            refused["HX-Retarget"] = f"#approval-{approval.pk}-alert"
            refused["HX-Reswap"] = "innerHTML"
            return refused
        context = _inbox_context(request, error=str(exc))
        return TemplateResponse(request, "workflows/approvals.html", context, status=exc.status)
    messages.success(request, f"{approval.get_decision_display()}: {approval.title}")
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return back(request, reverse("workflows_approvals"))


@require_http_methods(["GET", "POST"])
def decide_by_link(request: HttpRequest, token: str) -> TemplateResponse:
    """The emailed link: it acts as the assignee it was sent to, signed in or not."""
    found = services.approval_from_token(token)
    if found is None:
        return TemplateResponse(request, "workflows/approval_link.html", {"invalid": True}, status=404)
    approval, user = found
    context: dict[str, object] = {"approval": approval, "assignee": user, "token": token}
    status = 200
    expired = (
        approval.is_pending and approval.expires_at is not None and approval.expires_at <= timezone.now()
    )
    if expired:
        context["error"] = "This approval has expired; the workflow took its timeout branch."
        status = 400
    elif request.method == "POST":
        status = _decide_as(approval, user, DecisionForm(request.POST), context)
        approval.refresh_from_db()
    context["can_decide"] = (
        not expired and approval.is_pending and services.approval_can_decide(approval, user)
    )
    return TemplateResponse(request, "workflows/approval_link.html", context, status=status)


def _decide_as(approval: Approval, user: User, form: DecisionForm, context: dict[str, object]) -> int:
    if not form.is_valid():
        context["error"] = "Choose approve or reject."
        return 400
    try:
        services.approval_decide(
            approval=approval,
            by=user,
            approved=form.cleaned_data["decision"] == "approve",
            comment=form.cleaned_data["comment"],
        )
    except ServiceError as exc:
        context["error"] = str(exc)
        return exc.status
    context["done"] = True
    return 200
