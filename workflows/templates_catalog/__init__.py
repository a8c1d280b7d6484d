"""The templates gallery: ready-made workflows that install into an org and run on the demo model.

A template's graph is an ordinary workflow graph except that agent-using nodes name an *agent
template* instead of an agent id: `{"agent_template": "research"}` on agent and router nodes,
`{"fallback_agent_template": ...}` for an agent's fallback and `{"agent_templates": [...]}` on team
nodes. `materialize()` swaps those for agents of the installing org: an existing active agent hired
from that template (same `role`), or a new one created from it on the org's default model (the
offline demo model when no key is configured), so a fresh org can install and run every template.

Agent templates are the "Hire an agent" role templates plus a few specialists only workflows need.
The catalog reaches the `WorkflowTemplate` table through `sync_templates()` (run by a data migration).

The doc 001 §16.2 orchestration patterns each have a template: triage routing to specialists
(support-triage), a research -> outline -> draft -> edit chain (blog-post-pipeline), a reviewer loop
of up to 3 rounds until PASS (cold-email-review-loop), parallel fan-out with a combined result
(campaign-fan-out), shared context between steps (candidate-screening) and retry with a fallback
agent (incident-summary).

Layout: `spec.py` (the template shape and graph helpers), `agent_templates.py`, and one module of
templates per gallery category.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from workflows.graph import GraphError
from workflows.templates_catalog import customer_service, hr, marketing, operations, sales
from workflows.templates_catalog.agent_templates import AGENT_TEMPLATES, SAFE_TOOLS
from workflows.templates_catalog.spec import TemplateSpec, template_refs

if TYPE_CHECKING:
    from accounts.models import Organization, User
    from agents.models import Agent

__all__ = ["AGENT_TEMPLATES", "CATALOG", "CATALOG_BY_SLUG", "TemplateSpec", "materialize", "sync_templates"]

CATALOG: tuple[TemplateSpec, ...] = (
    *customer_service.TEMPLATES,
    *marketing.TEMPLATES,
    *sales.TEMPLATES,
    *hr.TEMPLATES,
    *operations.TEMPLATES,
)
CATALOG_BY_SLUG = {t.slug: t for t in CATALOG}


def sync_templates(model: Any = None) -> int:
    """Upsert the catalog into the gallery table (by slug); install counts are kept. Returns the count.

    `model` is the historical model when a migration calls this."""
    if model is None:
        from workflows.models import WorkflowTemplate

        model = WorkflowTemplate
    for spec in CATALOG:
        model.objects.update_or_create(
            slug=spec.slug,
            defaults={
                "name": spec.name,
                "category": spec.category,
                "description": spec.description,
                "complexity": spec.complexity,
                "rating": spec.rating,
                "graph": spec.graph,
                "is_published": True,
            },
        )
    return len(CATALOG)


# ------------------------------------------------------------------ installing


def agent_for_template(*, slug: str, org: Organization, by: User | None) -> Agent:
    """The org's active agent hired from this template, or a new one created from it."""
    from agents import services as agent_services
    from agents.models import Agent
    from agents.runtime.providers import default_model

    existing = (
        Agent.objects.for_org(org)
        .active()
        .filter(role=slug, published_version__isnull=False)
        .order_by("created_at", "id")
        .first()
    )
    if existing is not None:
        return existing
    template = AGENT_TEMPLATES[slug]
    provider, model = default_model(org=org)
    return agent_services.agent_create(
        org=org,
        by=by,
        name=template.label,
        description=template.description,
        avatar=template.emoji,
        role=template.id,
        category=template.category,
        config={
            "instructions": template.instructions,
            "model": {"provider": provider, "name": model},
            "tools": [{"type": t} for t in template.tools if t in SAFE_TOOLS],
        },
        publish=True,
    )


def materialize(graph: dict[str, Any], *, org: Organization, by: User | None) -> dict[str, Any]:
    """A deep copy of a template graph with agent templates replaced by agent ids of `org`.

    Raises GraphError (per node) for an agent template that does not exist."""
    out = copy.deepcopy(graph)
    errors: dict[str, list[str]] = {}
    for node in out.get("nodes", []):
        unknown = sorted(s for s in template_refs(node) if s not in AGENT_TEMPLATES)
        if unknown:
            errors[str(node.get("id"))] = [f"Unknown agent template {s!r}." for s in unknown]
    if errors:
        raise GraphError(errors)
    agents: dict[str, int] = {}

    def agent_id(slug: str) -> int:
        if slug not in agents:
            agents[slug] = agent_for_template(slug=slug, org=org, by=by).pk
        return agents[slug]

    for node in out.get("nodes", []):
        cfg = node.get("config")
        if not isinstance(cfg, dict):
            continue
        if cfg.get("agent_template"):
            cfg["agent_id"] = agent_id(cfg.pop("agent_template"))
        if cfg.get("fallback_agent_template"):
            cfg["fallback_agent_id"] = agent_id(cfg.pop("fallback_agent_template"))
        if cfg.get("agent_templates"):
            cfg["agent_ids"] = [agent_id(s) for s in cfg.pop("agent_templates")]
    return out
