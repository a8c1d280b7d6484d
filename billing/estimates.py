"""Cost estimates shown before a run starts: what one agent message reserves, and what one pass of a
workflow's agent steps is likely to cost. Both use `pricing.estimate_run`, the same formula the run
reserves with, so the number on the page is the number that is held."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billing import pricing
from billing.ledger import q

logger = logging.getLogger(__name__)


@dataclass
class AgentEstimate:
    credits: Decimal
    model: str

    @property
    def is_free(self) -> bool:
        return self.credits <= 0


@dataclass
class WorkflowEstimate:
    credits: Decimal = Decimal(0)
    agent_steps: int = 0
    unknown_agents: list[int] = field(default_factory=list)

    @property
    def is_free(self) -> bool:
        return self.credits <= 0


def _version_settings(agent: Any) -> tuple[str, str, int | None] | None:
    """(model, instructions, max_tokens) of the version a run would use, or None."""
    from agents.runtime.builder import version_config

    version = agent.published_version or agent.latest_version()
    if version is None:
        return None
    try:
        config = version_config(version)
    except Exception:  # a config that no longer parses cannot run either: no estimate
        logger.warning("agent %s: version %s does not parse", agent.pk, version.pk, exc_info=True)
        return None
    return config.model.name, config.instructions, config.model.max_tokens


def agent_estimate(agent: Any, text: str = "") -> AgentEstimate | None:
    """What one run of `agent` on `text` reserves. None when the agent has nothing to run."""
    settings = _version_settings(agent)
    if settings is None:
        return None
    model, instructions, max_tokens = settings
    return AgentEstimate(credits=pricing.estimate_run(model, text, instructions, max_tokens), model=model)


def _agent_ids(node: dict[str, Any]) -> tuple[list[int], str]:
    """The agents a node runs, and how to add them up: "sum" (each runs) or "max" (one is chosen)."""
    cfg = node.get("config") or {}
    kind = node.get("type")
    if kind == "agent":
        ids = [cfg.get("agent_id")]
        mode = "sum"
    elif kind == "team":
        ids = list(cfg.get("agent_ids") or [])
        mode = "max" if cfg.get("mode") == "route" else "sum"
    else:
        return [], "sum"
    clean = []
    for value in ids:
        if value is None:
            continue
        try:
            clean.append(int(value))
        except (TypeError, ValueError):
            continue
    return clean, mode


def workflow_estimate(*, org_id: int, graph: dict[str, Any] | None) -> WorkflowEstimate:
    """One pass through the graph's agent and team steps (a loop repeats its body, a branch may skip
    some): each agent's reservation for an empty input, added up. Agents of other orgs are ignored."""
    from agents.models import Agent

    nodes = [n for n in (graph or {}).get("nodes", []) if isinstance(n, dict)]
    plan = [_agent_ids(n) for n in nodes]
    wanted = {pk for ids, _mode in plan for pk in ids}
    if not wanted:  # no agent steps: nothing to look up (a webhook's hot path)
        return WorkflowEstimate(credits=q(Decimal(0)))
    agents = {
        a.pk: a
        for a in Agent.objects.filter(organization_id=org_id, pk__in=wanted).select_related(
            "published_version"
        )
    }
    cache: dict[int, Decimal | None] = {}

    def cost(pk: int) -> Decimal | None:
        if pk not in cache:
            agent = agents.get(pk)
            est = agent_estimate(agent) if agent is not None else None
            cache[pk] = est.credits if est is not None else None
        return cache[pk]

    result = WorkflowEstimate()
    for ids, mode in plan:
        if not ids:
            continue
        costs = []
        for pk in ids:
            value = cost(pk)
            if value is None:
                if pk not in result.unknown_agents:
                    result.unknown_agents.append(pk)
                continue
            costs.append(value)
        result.agent_steps += 1
        if costs:
            result.credits += max(costs) if mode == "max" else sum(costs, Decimal(0))
    result.credits = q(result.credits)
    return result
