"""/api/v1/ for accounts: me, organizations, members, invitations, API keys."""

from __future__ import annotations

from typing import cast

from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.models import ApiKey, Invitation, Membership, Organization, Role, User, role_at_least
from accounts.permissions import OrgContext, resolve_api_org, resolve_path_org
from accounts.serializers import (
    ApiKeyCreatedOutput,
    ApiKeyInput,
    ApiKeyOutput,
    InvitationInput,
    InvitationOutput,
    MembershipOutput,
    MeOutput,
    OrganizationInput,
    OrganizationOutput,
    RoleInput,
)
from accounts.tenancy import get_for_org_or_404
from config.api import ApiError, AuthRateThrottle, ErrorEnvelopeSerializer
from config.pagination import Pagination

ERRORS = {
    400: ErrorEnvelopeSerializer,
    401: ErrorEnvelopeSerializer,
    403: ErrorEnvelopeSerializer,
    404: ErrorEnvelopeSerializer,
}
ORG_HEADER = OpenApiParameter(
    "X-Organization",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Organization id or slug, for session and app-token requests.",
)


def _auth_kind(request: Request) -> str:
    if isinstance(request.auth, ApiKey):
        return "api_key"
    if request.headers.get("X-Session-Token"):
        return "session_token"
    return "session"


def _require(ctx: OrgContext, minimum: str) -> None:
    if not role_at_least(ctx.role, minimum):
        raise PermissionDenied("Your role in this organization does not allow this.")


def _call(fn, **kwargs):  # type: ignore[no-untyped-def]
    """Run a service and map its refusal to the API envelope."""
    try:
        return fn(**kwargs)
    except services.ServiceError as exc:
        if exc.status == 404:
            raise Http404(str(exc))
        raise ApiError(exc.status, exc.code, str(exc))


def _user(request: Request) -> User:
    """The signed-in person (IsAuthenticated has already run)."""
    return cast(User, request.user)


def _paginate(request: Request, queryset, serializer_class, **context):  # type: ignore[no-untyped-def]
    paginator = Pagination()
    page: list | None = paginator.paginate_queryset(queryset, request)
    data = serializer_class(page, many=True, context={"request": request, **context}).data
    return paginator.get_paginated_response(data)


def _user_roles(request: Request, ctx: OrgContext) -> dict[int, str]:
    if ctx.api_key is not None:
        return {ctx.org.pk: ctx.role}
    return dict(Membership.objects.filter(user=_user(request)).values_list("organization_id", "role"))


# ------------------------------------------------------------------ me


@extend_schema(responses={200: MeOutput, **ERRORS}, parameters=[ORG_HEADER], tags=["accounts"])
@api_view(["GET"])
def me(request: Request) -> Response:
    """The caller, their organizations with role, and the current organization."""
    ctx = resolve_api_org(request)
    roles = _user_roles(request, ctx)
    orgs = Organization.objects.filter(pk__in=roles.keys()).order_by("-is_personal", "name")
    user = request.user
    data = {
        "user": {"id": user.pk, "email": user.email, "name": user.name}
        if user.pk
        else {"id": 0, "email": "", "name": f"API key {ctx.api_key.prefix}" if ctx.api_key else ""},
        "organizations": orgs,
        "current_organization": ctx.org,
        "auth": _auth_kind(request),
    }
    return Response(MeOutput(data, context={"roles": roles}).data)


# -------------------------------------------------------- organizations


@extend_schema(
    methods=["GET"],
    responses={200: OrganizationOutput(many=True), **ERRORS},
    tags=["organizations"],
    operation_id="organizations_list",
)
@extend_schema(
    methods=["POST"],
    request=OrganizationInput,
    responses={201: OrganizationOutput, **ERRORS},
    tags=["organizations"],
    operation_id="organizations_create",
)
@api_view(["GET", "POST"])
def organization_list(request: Request) -> Response:
    if request.method == "POST":
        if isinstance(request.auth, ApiKey):
            raise PermissionDenied("API keys cannot create organizations.")
        body = OrganizationInput(data=request.data)
        body.is_valid(raise_exception=True)
        org = services.organization_create(name=body.validated_data["name"], owner=_user(request))
        return Response(
            OrganizationOutput(org, context={"roles": {org.pk: Role.OWNER}}).data,
            status=status.HTTP_201_CREATED,
        )
    if isinstance(request.auth, ApiKey):
        roles = {request.auth.organization_id: request.auth.role}
    else:
        roles = dict(Membership.objects.filter(user=_user(request)).values_list("organization_id", "role"))
    queryset = Organization.objects.filter(pk__in=roles.keys()).order_by("-is_personal", "name")
    return _paginate(request, queryset, OrganizationOutput, roles=roles)


@extend_schema(methods=["GET"], responses={200: OrganizationOutput, **ERRORS}, tags=["organizations"])
@extend_schema(
    methods=["PATCH", "PUT"],
    request=OrganizationInput,
    responses={200: OrganizationOutput, **ERRORS},
    tags=["organizations"],
)
@api_view(["GET", "PATCH", "PUT"])
def organization_detail(request: Request, org_id: int) -> Response:
    ctx = resolve_path_org(request, org_id)
    if request.method in ("PATCH", "PUT"):
        _require(ctx, Role.ADMIN)
        body = OrganizationInput(data=request.data)
        body.is_valid(raise_exception=True)
        user = request.user if request.user.pk else None
        services.organization_update(org=ctx.org, by=user, name=body.validated_data["name"])  # type: ignore[arg-type]
    return Response(OrganizationOutput(ctx.org, context={"roles": {ctx.org.pk: ctx.role}}).data)


# -------------------------------------------------------------- members


def _actor(request: Request, ctx: OrgContext) -> dict[str, object]:
    """Who acts, for the services. An API key acts as its creator, capped at the key's own role,
    and only while that creator is still a member."""
    user = request.user
    if not user.pk or ctx.member_role(user) is None:
        raise PermissionDenied(
            "This API key's creator is no longer a member; use a key from a current admin."
        )
    return {"by": user, "as_role": ctx.role if ctx.api_key else None, "request": request}


@extend_schema(responses={200: MembershipOutput(many=True), **ERRORS}, tags=["organizations"])
@api_view(["GET"])
def member_list(request: Request, org_id: int) -> Response:
    ctx = resolve_path_org(request, org_id)
    return _paginate(
        request, ctx.org.memberships.select_related("user").order_by("created_at"), MembershipOutput
    )


@extend_schema(methods=["GET"], responses={200: MembershipOutput, **ERRORS}, tags=["organizations"])
@extend_schema(
    methods=["PATCH"], request=RoleInput, responses={200: MembershipOutput, **ERRORS}, tags=["organizations"]
)
@extend_schema(methods=["DELETE"], responses={204: None, **ERRORS}, tags=["organizations"])
@api_view(["GET", "PATCH", "DELETE"])
def member_detail(request: Request, org_id: int, member_id: int) -> Response:
    ctx = resolve_path_org(request, org_id)
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(organization=ctx.org, pk=member_id)
        .first()
    )
    if membership is None:
        raise Http404
    if request.method == "GET":
        return Response(MembershipOutput(membership).data)
    if request.method == "PATCH":
        _require(ctx, Role.ADMIN)
        body = RoleInput(data=request.data)
        body.is_valid(raise_exception=True)
        _call(
            services.membership_change_role,
            membership=membership,
            role=body.validated_data["role"],
            **_actor(request, ctx),
        )
        return Response(MembershipOutput(membership).data)
    if membership.user_id != request.user.pk or ctx.api_key is not None:
        _require(ctx, Role.ADMIN)
    _call(services.membership_remove, membership=membership, **_actor(request, ctx))
    return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------- invitations


@extend_schema(
    methods=["GET"], responses={200: InvitationOutput(many=True), **ERRORS}, tags=["organizations"]
)
@extend_schema(
    methods=["POST"],
    request=InvitationInput,
    responses={201: InvitationOutput, **ERRORS},
    tags=["organizations"],
)
@api_view(["GET", "POST"])
def invitation_list(request: Request, org_id: int) -> Response:
    ctx = resolve_path_org(request, org_id)
    _require(ctx, Role.ADMIN)
    if request.method == "POST":
        body = InvitationInput(data=request.data)
        body.is_valid(raise_exception=True)
        invitation = _call(
            services.invitation_create,
            org=ctx.org,
            email=body.validated_data["email"],
            role=body.validated_data["role"],
            **_actor(request, ctx),
        )
        return Response(InvitationOutput(invitation).data, status=status.HTTP_201_CREATED)
    queryset = Invitation.objects.for_org(ctx.org).select_related("invited_by")
    return _paginate(request, queryset, InvitationOutput)


@extend_schema(
    responses={204: None, **ERRORS}, tags=["organizations"], description="Revoke a pending invitation."
)
@api_view(["DELETE"])
def invitation_detail(request: Request, org_id: int, invitation_id: int) -> Response:
    ctx = resolve_path_org(request, org_id)
    _require(ctx, Role.ADMIN)
    invitation = get_for_org_or_404(Invitation, ctx.org, pk=invitation_id)
    _call(services.invitation_revoke, invitation=invitation, **_actor(request, ctx))
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(request=None, responses={200: MembershipOutput, **ERRORS}, tags=["organizations"])
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@throttle_classes([AuthRateThrottle])
def invitation_accept(request: Request, token: str) -> Response:
    """Accept an invitation (app clients). The signed-in user's email must match the invitation."""
    if isinstance(request.auth, ApiKey):
        raise PermissionDenied("Invitations are accepted by people, not API keys.")
    invitation = Invitation.objects.select_related("organization").filter(token=token).first()
    if invitation is None:
        raise Http404
    with transaction.atomic():
        membership = _call(
            services.invitation_accept, invitation=invitation, user=request.user, request=request
        )
    return Response(MembershipOutput(membership).data)


# ------------------------------------------------------------- api keys


@extend_schema(methods=["GET"], responses={200: ApiKeyOutput(many=True), **ERRORS}, tags=["organizations"])
@extend_schema(
    methods=["POST"],
    request=ApiKeyInput,
    responses={201: ApiKeyCreatedOutput, **ERRORS},
    tags=["organizations"],
    description="Create a key. The full key is in this response only.",
)
@api_view(["GET", "POST"])
def api_key_list(request: Request, org_id: int) -> Response:
    ctx = resolve_path_org(request, org_id)
    _require(ctx, Role.ADMIN)
    if request.method == "POST":
        body = ApiKeyInput(data=request.data)
        body.is_valid(raise_exception=True)
        key, raw = _call(
            services.api_key_create,
            org=ctx.org,
            name=body.validated_data["name"],
            role=body.validated_data["role"],
            **_actor(request, ctx),
        )
        key.key = raw  # type: ignore[attr-defined]
        response = Response(ApiKeyCreatedOutput(key).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
    return _paginate(request, ApiKey.objects.for_org(ctx.org), ApiKeyOutput)


@extend_schema(responses={204: None, **ERRORS}, tags=["organizations"], description="Revoke a key.")
@api_view(["DELETE"])
def api_key_detail(request: Request, org_id: int, key_id: int) -> Response:
    ctx = resolve_path_org(request, org_id)
    _require(ctx, Role.ADMIN)
    key = get_for_org_or_404(ApiKey, ctx.org, pk=key_id)
    _call(services.api_key_revoke, key=key, **_actor(request, ctx))
    return Response(status=status.HTTP_204_NO_CONTENT)
