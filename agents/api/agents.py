"""/api/v1/agents/: the agent itself, its versions (publish, rollback, diff), clone and context (doc 001 §4.1, §4.7)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from agents import services
from agents.api.common import (
    ERRORS,
    acting_user,
    agent_or_404,
    call,
    doc,
    org_for,
    paginate,
    save_config,
    version_or_404,
    visible_agents,
    writer,
)
from agents.models import Agent, AgentContextEntry
from agents.serializers import (
    AgentDetailOutput,
    AgentInput,
    AgentOutput,
    CloneInput,
    ContextInput,
    ContextOutput,
    PublishInput,
    RollbackInput,
    VersionDetailOutput,
    VersionOutput,
)
from config.api import ApiError

PROFILE_FIELDS = ("description", "avatar", "role", "category", "visibility")


def _detail(agent: Agent, code: int = status.HTTP_200_OK) -> Response:
    agent.refresh_from_db()
    return Response(AgentDetailOutput(agent).data, status=code)


@doc(
    methods=["GET"],
    responses={200: AgentOutput(many=True), **ERRORS},
    parameters=[
        OpenApiParameter("status", str, enum=Agent.Status.values, description="Default: all but archived."),
        OpenApiParameter("q", str, description="Search in name and description."),
    ],
    tags=["agents"],
    operation_id="agents_list",
)
@doc(
    methods=["POST"],
    request=AgentInput,
    responses={201: AgentDetailOutput, **ERRORS},
    tags=["agents"],
    operation_id="agents_create",
)
@api_view(["GET", "POST"])
def agent_list(request: Request) -> Response:
    if request.method == "POST":
        ctx = writer(request)
        body = AgentInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        config = {**services.default_config(org=ctx.org), **data["config"]} if "config" in data else None
        agent = call(
            services.agent_create,
            org=ctx.org,
            by=acting_user(request, ctx),
            name=data["name"],
            config=config,
            publish=data["publish"],
            **{k: data[k] for k in PROFILE_FIELDS if k in data},
        )
        return _detail(agent, status.HTTP_201_CREATED)
    ctx = org_for(request)
    queryset = visible_agents(ctx, acting_user(request, ctx))
    wanted = request.query_params.get("status")
    if wanted:
        if wanted not in Agent.Status.values:
            raise ValidationError({"status": [f"Use one of {', '.join(Agent.Status.values)}."]})
        queryset = queryset.filter(status=wanted)
    else:
        queryset = queryset.not_archived()
    q = (request.query_params.get("q") or "").strip()[:100]
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return paginate(request, queryset.order_by("-updated_at", "-id"), AgentOutput)


@doc(methods=["GET"], responses={200: AgentDetailOutput, **ERRORS}, tags=["agents"])
@doc(
    methods=["PUT", "PATCH"],
    request=AgentInput(partial=True),
    responses={200: AgentDetailOutput, **ERRORS},
    tags=["agents"],
    description="Profile fields change in place. A `config` makes a new draft version "
    "(the keys you send replace the latest version's); `publish` publishes it.",
)
@doc(methods=["DELETE"], responses={204: None, **ERRORS}, tags=["agents"], description="Archive the agent.")
@api_view(["GET", "PUT", "PATCH", "DELETE"])
def agent_detail(request: Request, agent_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    if request.method == "GET":
        return Response(AgentDetailOutput(agent).data)
    if request.method == "DELETE":
        services.agent_archive(agent=agent)
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = AgentInput(data=request.data, partial=True)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    by = acting_user(request, ctx)
    fields = {k: data[k] for k in ("name", *PROFILE_FIELDS) if k in data}
    with transaction.atomic():  # a refused config leaves the profile unchanged too
        call(services.agent_update, agent=agent, by=by, **fields)
        version = None
        if "config" in data:
            config = {**services.agent_config_draft(agent=agent), **data["config"]}
            version = save_config(agent=agent, by=by, config=config, note=data.get("note") or "Edited")
        if data.get("publish"):
            version = version or agent.latest_version()
            if version is not None:
                call(services.agent_publish, agent=agent, version=version, by=by)
    return _detail(agent)


@doc(request=None, responses={200: AgentDetailOutput, **ERRORS}, tags=["agents"])
@api_view(["POST"])
def agent_restore(request: Request, agent_id: int) -> Response:
    """Bring an archived agent back (active if it has a published version, else draft)."""
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    return _detail(call(services.agent_restore, agent=agent))


@doc(request=CloneInput, responses={201: AgentDetailOutput, **ERRORS}, tags=["agents"])
@api_view(["POST"])
def agent_clone(request: Request, agent_id: int) -> Response:
    """Copies profile, config (tools included) and context; never runs, sessions or memory."""
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    body = CloneInput(data=request.data)
    body.is_valid(raise_exception=True)
    clone = call(
        services.agent_clone, agent=agent, by=acting_user(request, ctx), name=body.validated_data.get("name")
    )
    return _detail(clone, status.HTTP_201_CREATED)


# -------------------------------------------------------------- versions


@doc(responses={200: VersionOutput(many=True), **ERRORS}, tags=["agents"])
@api_view(["GET"])
def version_list(request: Request, agent_id: int) -> Response:
    agent = agent_or_404(request, org_for(request), agent_id)
    queryset = agent.versions.select_related("created_by", "agent").order_by("-number")
    return paginate(request, queryset, VersionOutput)


@doc(
    responses={200: VersionDetailOutput, **ERRORS},
    parameters=[OpenApiParameter("diff_with", int, description="Also return the diff from this version.")],
    tags=["agents"],
)
@api_view(["GET"])
def version_detail(request: Request, agent_id: int, number: int) -> Response:
    agent = agent_or_404(request, org_for(request), agent_id)
    version = version_or_404(agent, number)
    data = dict(VersionDetailOutput(version).data)
    other = request.query_params.get("diff_with")
    if other:
        if not other.isdigit() or len(other) > 9:
            raise ValidationError({"diff_with": ["Must be a version number."]})
        data["diff"] = services.version_diff(old=version_or_404(agent, int(other)), new=version)
    return Response(data)


@doc(request=PublishInput, responses={200: AgentDetailOutput, **ERRORS}, tags=["agents"])
@api_view(["POST"])
def agent_publish(request: Request, agent_id: int) -> Response:
    """Make a version (default: the latest) the one runs use."""
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    body = PublishInput(data=request.data)
    body.is_valid(raise_exception=True)
    number = body.validated_data.get("version")
    version = version_or_404(agent, number) if number else agent.latest_version()
    if version is None:
        raise ValidationError({"version": ["This agent has no version yet."]})
    call(services.agent_publish, agent=agent, version=version, by=acting_user(request, ctx))
    return _detail(agent)


@doc(request=RollbackInput, responses={200: AgentDetailOutput, **ERRORS}, tags=["agents"])
@api_view(["POST"])
def agent_rollback(request: Request, agent_id: int) -> Response:
    """Copy an old version's config into a new version and publish it; history stays linear."""
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    body = RollbackInput(data=request.data)
    body.is_valid(raise_exception=True)
    version = version_or_404(agent, body.validated_data["version"])
    call(services.agent_rollback, agent=agent, version=version, by=acting_user(request, ctx))
    return _detail(agent)


# --------------------------------------------------------------- context


@doc(methods=["GET"], responses={200: ContextOutput(many=True), **ERRORS}, tags=["agents"])
@doc(
    methods=["POST", "PUT"],
    request=ContextInput,
    responses={200: ContextOutput, **ERRORS},
    tags=["agents"],
    description="Set one context entry (created or replaced by key).",
)
@doc(
    methods=["DELETE"],
    parameters=[OpenApiParameter("key", str, required=True)],
    responses={204: None, **ERRORS},
    tags=["agents"],
)
@api_view(["GET", "POST", "PUT", "DELETE"])
def agent_context(request: Request, agent_id: int) -> Response:
    """Key/value context the agent gets on every run (doc 001 §4.7)."""
    ctx = org_for(request) if request.method == "GET" else writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    entries = AgentContextEntry.objects.for_org(ctx.org).filter(agent=agent)
    if request.method == "GET":
        return Response(ContextOutput(entries.order_by("key"), many=True).data)
    if request.method == "DELETE":
        key = (request.query_params.get("key") or "").strip()
        if not key:
            raise ValidationError({"key": ["Name the context entry to delete: ?key=..."]})
        deleted, _ = entries.filter(key=key).delete()
        if not deleted:
            raise ApiError(404, "not_found", f"This agent has no context entry “{key[:100]}”.")
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = ContextInput(data=request.data)
    body.is_valid(raise_exception=True)
    entry = call(
        services.context_set, agent=agent, key=body.validated_data["key"], value=body.validated_data["value"]
    )
    return Response(ContextOutput(entry).data)
