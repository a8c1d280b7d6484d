"""/api/v1/agents/<id>/handoffs (doc 001 §4.3). Each write is a new draft version of the agent's config."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from agents import services
from agents.api.common import ERRORS, acting_user, agent_or_404, doc, org_for, save_config, writer
from agents.models import Agent, AgentVersion
from agents.serializers import HandoffInput, HandoffListOutput, HandoffOutput
from config.api import ApiError


def _out(org_id: int, handoffs: list[dict[str, Any]], version: AgentVersion | None) -> list[dict[str, Any]]:
    ids = {h["agent_id"] for h in handoffs}
    names = dict(Agent.objects.for_org(org_id).filter(pk__in=ids).values_list("pk", "name"))
    return [
        {
            "id": h["id"],
            "agent_id": h["agent_id"],
            "agent_name": names.get(h["agent_id"]),
            "description": h.get("description", ""),
            "version": version.number if version else None,
        }
        for h in handoffs
    ]


def _find(config: dict[str, Any], handoff_id: str) -> int:
    for i, handoff in enumerate(config.get("handoffs") or []):
        if handoff.get("id") == handoff_id:
            return i
    raise ApiError(404, "not_found", "This agent has no such handoff.")


def _check_duplicate(config: dict[str, Any], agent_id: int, skip: str | None = None) -> None:
    if any(h["agent_id"] == agent_id and h.get("id") != skip for h in config.get("handoffs") or []):
        raise ValidationError({"agent_id": ["This agent already hands off to that agent."]})


@doc(methods=["GET"], responses={200: HandoffListOutput, **ERRORS}, tags=["agents"])
@doc(
    methods=["POST"],
    request=HandoffInput,
    responses={201: HandoffOutput, **ERRORS},
    tags=["agents"],
    description="Add a handoff to another agent of this organization. Creates a new draft version; "
    "a handoff cycle is refused.",
)
@api_view(["GET", "POST"])
def handoff_list(request: Request, agent_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    if request.method == "GET":
        latest = agent.latest_version()
        config = latest.config if latest else {}
        return Response(
            HandoffListOutput(
                {
                    "mode": config.get("handoff_mode", "route"),
                    "version": latest.number if latest else None,
                    "handoffs": _out(ctx.org.pk, config.get("handoffs") or [], latest),
                }
            ).data
        )
    body = HandoffInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    config = services.agent_config_draft(agent=agent)
    _check_duplicate(config, data["agent_id"])
    handoff = {
        "id": uuid.uuid4().hex[:12],
        "agent_id": data["agent_id"],
        "description": data.get("description", ""),
    }
    config["handoffs"] = [*(config.get("handoffs") or []), handoff]
    version = save_config(
        agent=agent,
        by=acting_user(request, ctx),
        config=config,
        note=f"Added a handoff to agent {data['agent_id']}",
    )
    return Response(
        HandoffOutput(_out(ctx.org.pk, [handoff], version)[0]).data, status=status.HTTP_201_CREATED
    )


@doc(
    methods=["PUT"],
    request=HandoffInput(partial=True),
    responses={200: HandoffOutput, **ERRORS},
    tags=["agents"],
)
@doc(methods=["DELETE"], responses={204: None, **ERRORS}, tags=["agents"])
@api_view(["PUT", "DELETE"])
def handoff_detail(request: Request, agent_id: int, handoff_id: str) -> Response:
    """Change or remove one handoff. Each change is a new draft version."""
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    config = services.agent_config_draft(agent=agent)
    index = _find(config, handoff_id)
    handoffs = list(config["handoffs"])
    by = acting_user(request, ctx)
    if request.method == "DELETE":
        removed = handoffs.pop(index)
        config["handoffs"] = handoffs
        save_config(
            agent=agent, by=by, config=config, note=f"Removed the handoff to agent {removed['agent_id']}"
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = HandoffInput(data=request.data, partial=True)
    body.is_valid(raise_exception=True)
    changed = {**handoffs[index], **body.validated_data}
    _check_duplicate(config, changed["agent_id"], skip=handoff_id)
    handoffs[index] = changed
    config["handoffs"] = handoffs
    version = save_config(
        agent=agent, by=by, config=config, note=f"Changed the handoff to agent {changed['agent_id']}"
    )
    return Response(HandoffOutput(_out(ctx.org.pk, [changed], version)[0]).data)
