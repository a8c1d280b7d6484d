"""Shared plumbing for the agents API: the org and role checks, loading through the org, error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role, User, role_at_least
from accounts.permissions import OrgContext, resolve_api_org
from accounts.services import ServiceError
from agents.config import ConfigError
from agents.models import Agent, AgentVersion
from config.api import ApiError, ErrorEnvelopeSerializer
from config.pagination import Pagination
from config.prepared import Prepared

ERRORS = {
    400: ErrorEnvelopeSerializer,
    401: ErrorEnvelopeSerializer,
    403: ErrorEnvelopeSerializer,
    404: ErrorEnvelopeSerializer,
}
ERRORS_409 = {**ERRORS, 409: ErrorEnvelopeSerializer}
ORG_HEADER = OpenApiParameter(
    "X-Organization",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Organization id or slug, for session and app-token requests.",
)

T = TypeVar("T")


def doc(**kwargs: Any) -> Any:
    """extend_schema with the X-Organization header every endpoint here accepts."""
    return extend_schema(parameters=[ORG_HEADER, *kwargs.pop("parameters", [])], **kwargs)


# ------------------------------------------------------------ who and where


def org_for(request: Request, minimum: str = Role.VIEWER) -> OrgContext:
    """The caller's organization; reads need any membership, writes pass `Role.MEMBER` or more."""
    ctx = resolve_api_org(request)
    if not role_at_least(ctx.role, minimum):
        raise PermissionDenied("Your role in this organization does not allow this.")
    return ctx


def writer(request: Request) -> OrgContext:
    return org_for(request, Role.MEMBER)


def acting_user(request: Request, ctx: OrgContext) -> User | None:
    """The person behind the request. An API key acts as its creator while they are still a member."""
    if hasattr(request, "_acting_user"):
        return cast("User | None", request._acting_user)
    user = request.user
    result: User | None = user if getattr(user, "pk", None) else None  # type: ignore[assignment]
    if result is not None and ctx.api_key is not None and ctx.member_role(result) is None:
        result = None
    request._acting_user = result  # type: ignore[attr-defined]  # one membership query per request
    return result


def person(request: Request, ctx: OrgContext) -> User:
    """Like acting_user, for things that belong to one person (memories, conversations)."""
    user = acting_user(request, ctx)
    if user is None:
        raise PermissionDenied("This belongs to a person; use a key whose creator is still a member.")
    return user


def visible_agents(ctx: OrgContext, user: User | None) -> Any:
    """The org's agents this caller may see: private ones only by their creator."""
    return _visible_agents(ctx.org.pk, user.pk if user is not None else None)


def _visible_agents(org_id: int, user_id: int | None) -> Any:
    private = Q(visibility=Agent.Visibility.PRIVATE)
    if user_id is not None:
        private &= ~Q(created_by_id=user_id)
    return Agent.objects.for_org(org_id).exclude(private).select_related("published_version")


# agent_or_404 runs on every agent request: its two shapes are compiled once.
_AGENT_FOR_USER = Prepared(lambda org, user, pk: _visible_agents(org, user).filter(pk=pk), int, int, int)
_AGENT_FOR_NO_ONE = Prepared(lambda org, pk: _visible_agents(org, None).filter(pk=pk), int, int)


def agent_or_404(request: Request, ctx: OrgContext, agent_id: int) -> Agent:
    user = acting_user(request, ctx)
    if user is None:
        agent = _AGENT_FOR_NO_ONE.first(ctx.org.pk, agent_id)
    else:
        agent = _AGENT_FOR_USER.first(ctx.org.pk, user.pk, agent_id)
    if agent is None:
        raise ApiError(404, "not_found", "No such agent in this organization.")
    return agent


def version_or_404(agent: Agent, number: int) -> AgentVersion:
    version = agent.versions.filter(number=number).select_related("created_by").first()
    if version is None:
        raise ApiError(404, "not_found", f"Agent {agent.pk} has no version {number}.")
    return version


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No such {what} in this organization.")


# --------------------------------------------------------------- errors


def config_field_errors(exc: ConfigError) -> ValidationError:
    """Config paths (`tools.0.config.url`) become request fields (`config.tools.0.config.url`)."""
    return ValidationError(
        {
            ("config" if path == "config" else f"config.{path}"): messages
            for path, messages in exc.errors.items()
        }
    )


def call(fn: Callable[..., T], **kwargs: Any) -> T:
    """Run a service and map its refusal to the API envelope."""
    try:
        return fn(**kwargs)
    except ConfigError as exc:
        raise config_field_errors(exc)
    except ServiceError as exc:
        raise ApiError(exc.status, exc.code, str(exc))


def save_config(*, agent: Agent, by: User | None, config: dict[str, Any], note: str) -> AgentVersion:
    """Every config edit through the API becomes a new draft version (validated by the service)."""
    from agents.services import version_create

    return call(version_create, agent=agent, by=by, config=config, note=note)


# ------------------------------------------------------------ pagination


def paginate(request: Request, queryset: Any, serializer_class: Any, **context: Any) -> Response:
    paginator = Pagination()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request)
    data = serializer_class(page, many=True, context={"request": request, **context}).data
    return paginator.get_paginated_response(data)


def query_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not str(raw).isdigit() or len(str(raw)) > 18:
        raise ValidationError({name: ["Must be a positive integer."]})
    return int(str(raw))
