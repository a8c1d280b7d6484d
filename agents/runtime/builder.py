"""Building agno Agents and Teams from stored versions.

Parsed configs are cached per version id (versions are immutable) and model clients per provider
and key (see providers.py), so building an agent per run costs microseconds, not a client setup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agno.agent import Agent as AgnoAgent
from agno.team import Team
from agno.team.mode import TeamMode

from agents.config import AgentConfig, ModelChoice, ToolSpec, parse_config
from agents.models import Agent, AgentVersion
from agents.output_types import resolve_schema
from agents.runtime.guardrails import Trip, input_hook
from agents.runtime.providers import build_model, credentials_for
from agents.runtime.tools import ToolContext, build_tools

_PARSED: dict[int, AgentConfig] = {}


def version_config(version: AgentVersion) -> AgentConfig:
    """Versions are immutable, so a parsed config is cached by id for the life of the process."""
    parsed = _PARSED.get(version.pk)
    if parsed is None:
        if len(_PARSED) > 4096:
            _PARSED.clear()
        parsed = _PARSED[version.pk] = parse_config(version.config)
    return parsed


@dataclass
class Built:
    runner: AgnoAgent | Team
    config: AgentConfig
    model_label: str
    schema: dict[str, Any] | None


def model_for(org_id: int, choice: ModelChoice, temperature: float, max_tokens: int | None) -> Any:
    creds = credentials_for(org=org_id, provider_id=choice.provider)
    return build_model(creds=creds, model=choice.name, temperature=temperature, max_tokens=max_tokens)


def _response_format(schema: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    if schema is None:
        return None
    # agno passes a dict output_schema verbatim as the provider's response_format.
    return {"type": "json_schema", "json_schema": {"name": (name or "output")[:64], "schema": schema}}


def tool_specs(config: AgentConfig) -> list[ToolSpec]:
    """The config's tools, plus `knowledge_search` (with the agent's knowledge settings) for an agent
    that has knowledge bases attached. A knowledge_search tool listed by hand gets the settings too."""
    specs = list(config.tools)
    if not config.knowledge.knowledge_base_ids:
        return specs
    settings = config.knowledge.model_dump()
    for i, spec in enumerate(specs):
        if spec.type == "knowledge_search":
            specs[i] = spec.model_copy(update={"config": {**settings, **spec.config}})
            return specs
    return [*specs, ToolSpec(type="knowledge_search", config=settings)]


def _instructions(config: AgentConfig, extra_context: str) -> str:
    parts = [config.instructions.strip()] if config.instructions.strip() else []
    if extra_context:
        parts.append(extra_context)
    return "\n\n".join(parts)


def build_agent(
    *,
    agent: Agent,
    version: AgentVersion,
    ctx: ToolContext,
    model_choice: ModelChoice | None = None,
    history: list[Any] | None = None,
    extra_context: str = "",
    on_trip: Callable[[Trip], None] | None = None,
) -> Built:
    config = version_config(version)
    choice = model_choice or config.model
    model = model_for(agent.organization_id, choice, config.model.temperature, config.model.max_tokens)
    schema = resolve_schema(config.output_type)
    pre_hooks = [input_hook(config.guardrails, on_trip or (lambda trip: None))]
    tools: list[Any] = list(build_tools(tool_specs(config), ctx))
    common: dict[str, Any] = {
        "name": agent.name,
        "model": model,
        "instructions": _instructions(config, extra_context) or None,
        "additional_input": history or None,
        "pre_hooks": pre_hooks,
        "telemetry": False,
    }
    if config.handoffs:
        members = _members(agent=agent, config=config, ctx=ctx)
        runner: AgnoAgent | Team = Team(
            members=list(members),
            mode=TeamMode(config.handoff_mode),
            tools=list(tools) or None,
            tool_call_limit=config.tool_call_limit or None,
            output_schema=_response_format(schema, config.output_type.name),
            stream_member_events=False,
            **common,
        )
    else:
        runner = AgnoAgent(
            tools=tools or None,
            tool_call_limit=config.tool_call_limit or None,
            output_schema=_response_format(schema, config.output_type.name),
            **common,
        )
    return Built(runner=runner, config=config, model_label=f"{choice.provider}/{choice.name}", schema=schema)


def _members(*, agent: Agent, config: AgentConfig, ctx: ToolContext) -> list[AgnoAgent | Team]:
    ids = [h.agent_id for h in config.handoffs]
    specialists = {a.pk: a for a in Agent.objects.for_org(agent.organization_id).filter(pk__in=ids)}
    members: list[AgnoAgent | Team] = []
    for handoff in config.handoffs:
        specialist = specialists.get(handoff.agent_id)
        if specialist is None:
            continue  # deleted since the version was saved; the team works with who is left
        version = specialist.published_version or specialist.latest_version()
        if version is None:
            continue
        sub = version_config(version)
        members.append(
            AgnoAgent(
                id=specialist.slug,
                name=specialist.name,
                role=handoff.description or specialist.description or specialist.role,
                model=model_for(
                    agent.organization_id, sub.model, sub.model.temperature, sub.model.max_tokens
                ),
                instructions=sub.instructions or None,
                tools=build_tools(
                    tool_specs(sub), ToolContext(ctx.org_id, specialist.pk, ctx.run_id, ctx.user_id)
                )
                or None,
                telemetry=False,
            )
        )
    return members


def run_subagent(*, org_id: int, agent_id: int, task: str) -> str:
    """Agent-as-tool: run another agent of the same org on a sub-task and return its answer."""
    other = Agent.objects.for_org(org_id).filter(pk=agent_id).first()
    if other is None or other.is_archived:
        return "Error: that agent is not available."
    version = other.published_version or other.latest_version()
    if version is None:
        return "Error: that agent has no version."
    built = build_agent(agent=other, version=version, ctx=ToolContext(org_id, other.pk, None, None))
    output = built.runner.run(task)
    content = output.content
    return content if isinstance(content, str) else str(content)
