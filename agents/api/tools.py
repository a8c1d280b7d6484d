"""/api/v1/agents/<id>/tools, the tools catalog and the output types (doc 001 §4.4).

Each tool write is a new draft version of the agent's config; the tool's `id` lives in the config.
"""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from agents import services
from agents.api.common import ERRORS, acting_user, agent_or_404, doc, org_for, save_config, writer
from agents.models import AgentVersion
from agents.output_types import BUILTIN_OUTPUT_TYPES
from agents.runtime.tools import tool_types
from agents.serializers import OutputTypeOutput, ToolInput, ToolOutput, ToolTypeOutput
from config.api import ApiError

TOOL_FIELDS = ("type", "name", "description", "config", "ask_before_run")


def _out(tool: dict[str, Any], version: AgentVersion | None) -> dict[str, Any]:
    return {
        "id": tool.get("id", ""),
        "type": tool["type"],
        "name": tool.get("name", ""),
        "description": tool.get("description", ""),
        "config": tool.get("config") or {},
        "ask_before_run": bool(tool.get("ask_before_run")),
        "version": version.number if version else None,
    }


def _saved(version: AgentVersion, tool_id: str) -> dict[str, Any]:
    """The tool as the new version stored it (validation fills in defaults, e.g. an HTTP tool's method)."""
    return next(t for t in version.config.get("tools", []) if t.get("id") == tool_id)


@doc(methods=["GET"], responses={200: ToolOutput(many=True), **ERRORS}, tags=["agents"])
@doc(
    methods=["POST"],
    request=ToolInput,
    responses={201: ToolOutput, **ERRORS},
    tags=["agents"],
    description="Add a tool. Creates a new draft version. Config errors come back as field errors "
    "keyed by their path, e.g. `config.tools.2.config.url`.",
)
@api_view(["GET", "POST"])
def tool_list(request: Request, agent_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    if request.method == "GET":
        latest = agent.latest_version()
        tools = (latest.config.get("tools") if latest else None) or []
        return Response(ToolOutput([_out(t, latest) for t in tools], many=True).data)
    body = ToolInput(data=request.data)
    body.is_valid(raise_exception=True)
    tool = {"id": uuid.uuid4().hex[:12], **{k: v for k, v in body.validated_data.items() if k in TOOL_FIELDS}}
    config = services.agent_config_draft(agent=agent)
    config["tools"] = [*(config.get("tools") or []), tool]
    version = save_config(
        agent=agent, by=acting_user(request, ctx), config=config, note=f"Added the {tool['type']} tool"
    )
    return Response(
        ToolOutput(_out(_saved(version, tool["id"]), version)).data, status=status.HTTP_201_CREATED
    )


@doc(methods=["PUT"], request=ToolInput(partial=True), responses={200: ToolOutput, **ERRORS}, tags=["agents"])
@doc(methods=["DELETE"], responses={204: None, **ERRORS}, tags=["agents"])
@api_view(["PUT", "DELETE"])
def tool_detail(request: Request, agent_id: int, tool_id: str) -> Response:
    """Change or remove one tool. Fields you leave out keep their values. Each change is a new draft version."""
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    config = services.agent_config_draft(agent=agent)
    tools = list(config.get("tools") or [])
    index = next((i for i, t in enumerate(tools) if t.get("id") == tool_id), None)
    if index is None:
        raise ApiError(404, "not_found", "This agent has no such tool.")
    by = acting_user(request, ctx)
    if request.method == "DELETE":
        removed = tools.pop(index)
        config["tools"] = tools
        save_config(
            agent=agent,
            by=by,
            config=config,
            note=f"Removed the {removed.get('name') or removed['type']} tool",
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = ToolInput(data=request.data, partial=True)
    body.is_valid(raise_exception=True)
    tools[index] = {**tools[index], **{k: v for k, v in body.validated_data.items() if k in TOOL_FIELDS}}
    config["tools"] = tools
    version = save_config(agent=agent, by=by, config=config, note=f"Changed the {tools[index]['type']} tool")
    return Response(ToolOutput(_out(_saved(version, tool_id), version)).data)


# ---------------------------------------------------------------- catalog


@doc(responses={200: ToolTypeOutput(many=True), **ERRORS}, tags=["agents"])
@api_view(["GET"])
def tools_available(request: Request) -> Response:
    """The tool types an agent can use, with the JSON Schema of each one's config."""
    org_for(request)
    return Response(
        ToolTypeOutput(
            [
                {
                    "type": t.type,
                    "label": t.label,
                    "description": t.description,
                    "config_schema": t.config_schema,
                }
                for t in tool_types()
            ],
            many=True,
        ).data
    )


def _output_type(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": spec["description"], "schema": spec["schema"]}


@doc(responses={200: OutputTypeOutput(many=True), **ERRORS}, tags=["agents"])
@api_view(["GET"])
def output_types_available(request: Request) -> Response:
    """Built-in output types. An agent may also give a custom JSON Schema as `output_type.schema`."""
    org_for(request)
    return Response(
        OutputTypeOutput([_output_type(n, s) for n, s in BUILTIN_OUTPUT_TYPES.items()], many=True).data
    )


@doc(responses={200: OutputTypeOutput, **ERRORS}, tags=["agents"])
@api_view(["GET"])
def output_type_detail(request: Request, type_name: str) -> Response:
    org_for(request)
    spec = BUILTIN_OUTPUT_TYPES.get(type_name)
    if spec is None:
        raise ApiError(404, "not_found", f"No output type “{type_name[:64]}”.")
    return Response(OutputTypeOutput(_output_type(type_name, spec)).data)
