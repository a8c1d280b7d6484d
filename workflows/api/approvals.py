"""/api/v1/approvals/: the human decisions workflow runs wait for."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role, User, role_at_least
from accounts.permissions import OrgContext
from agents.api.common import ERRORS, ERRORS_409, acting_user, doc, org_for
from config.api import ApiError
from config.pagination import Pagination
from workflows import services
from workflows.api.common import call
from workflows.models import Approval
from workflows.serializers import ApprovalDecisionInput, ApprovalOutput

TAGS = ["approvals"]
SCOPES = ("mine", "all")


def _approvals(ctx: OrgContext) -> QuerySet[Approval]:
    return (
        Approval.objects.for_org(ctx.org)
        .select_related("step", "run", "decided_by", "organization")
        .prefetch_related("assignees")
    )


def _decidable(queryset: QuerySet[Approval], ctx: OrgContext, user: User | None) -> QuerySet[Approval]:
    """The approvals `user` may decide: the SQL twin of services.approval_can_decide (assignees decide,
    admins always may; with no assignees any member may). The role is the person's, not the key's."""
    role = ctx.org.role_of(user) if user is not None else None
    if user is None or role is None:
        return queryset.none()
    if role_at_least(role, Role.ADMIN):
        return queryset
    mine = Q(assignees=user)
    if role_at_least(role, Role.MEMBER):
        mine |= Q(assignees=None)
    return queryset.filter(mine).distinct()


def _approval_or_404(ctx: OrgContext, approval_id: int) -> Approval:
    approval = _approvals(ctx).filter(pk=approval_id).first()
    if approval is None:
        raise ApiError(404, "not_found", "No such approval in this organization.")
    return approval


def _output(request: Request, ctx: OrgContext, approval: Approval) -> Response:
    user = acting_user(request, ctx)
    decidable = {approval.pk} if services.approval_can_decide(approval, user) else set()
    return Response(ApprovalOutput(approval, context={"decidable": decidable}).data)


@doc(
    responses={200: ApprovalOutput(many=True), **ERRORS},
    parameters=[
        OpenApiParameter("decision", str, enum=Approval.Decision.values, description="Default: pending."),
        OpenApiParameter(
            "scope",
            str,
            enum=list(SCOPES),
            description="`mine` (default): the ones you may decide; `all`: every approval of the organization.",
        ),
    ],
    tags=TAGS,
)
@api_view(["GET"])
def approval_list(request: Request) -> Response:
    """The approvals inbox, newest first."""
    ctx = org_for(request)
    user = acting_user(request, ctx)
    decision = request.query_params.get("decision") or Approval.Decision.PENDING
    if decision not in Approval.Decision.values:
        raise ValidationError({"decision": [f"Use one of {', '.join(Approval.Decision.values)}."]})
    scope = request.query_params.get("scope") or "mine"
    if scope not in SCOPES:
        raise ValidationError({"scope": ["Use mine or all."]})
    base = _approvals(ctx).filter(decision=decision)
    queryset = _decidable(base, ctx, user) if scope == "mine" else base
    paginator = Pagination()
    page: list[Approval] = paginator.paginate_queryset(queryset.order_by("-created_at", "-id"), request) or []
    ids = [a.pk for a in page]
    decidable = set(_decidable(base.filter(pk__in=ids), ctx, user).values_list("pk", flat=True))
    data = ApprovalOutput(page, many=True, context={"decidable": decidable}).data
    return paginator.get_paginated_response(data)


@doc(responses={200: ApprovalOutput, **ERRORS}, tags=TAGS)
@api_view(["GET"])
def approval_detail(request: Request, approval_id: int) -> Response:
    ctx = org_for(request)
    return _output(request, ctx, _approval_or_404(ctx, approval_id))


@doc(
    request=ApprovalDecisionInput,
    responses={200: ApprovalOutput, **ERRORS_409},
    tags=TAGS,
    description="Approve or reject; the run continues down the `approved` or `rejected` branch. Only an "
    "assignee (or an admin) may decide, and only once: a second decision is a 409.",
)
@api_view(["POST"])
def approval_decide(request: Request, approval_id: int) -> Response:
    ctx = org_for(request)  # an assignee who is a viewer may decide; the service checks who
    approval = _approval_or_404(ctx, approval_id)
    body = ApprovalDecisionInput(data=request.data)
    body.is_valid(raise_exception=True)
    approval = call(
        services.approval_decide,
        approval=approval,
        by=acting_user(request, ctx),
        approved=body.validated_data["approved"],
        comment=body.validated_data["comment"],
    )
    return _output(request, ctx, _approval_or_404(ctx, approval.pk))
