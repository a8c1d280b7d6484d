"""The agents list, hiring from a role template, and the agent page's Settings, Tools and Knowledge tabs."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from agents import services
from agents.config import ConfigError
from agents.forms import HireForm, ProfileForm
from agents.models import AVATAR_SETS, Agent
from agents.runtime.tools import tool_types
from agents.templates_catalog import ROLE_TEMPLATES, ROLE_TEMPLATES_BY_ID, template_instructions
from agents.views.common import agent_or_404, agent_page, can_write, service_error_response, visible_agents

PAGE_SIZE = 12


def _hire_context(form: HireForm) -> dict[str, object]:
    return {
        "hire_form": form,
        "role_templates": ROLE_TEMPLATES,
        "role_templates_json": [t.as_json() for t in ROLE_TEMPLATES],
        "avatar_sets": AVATAR_SETS,
    }


@org_role_required()
def index(request: AuthedHttpRequest) -> TemplateResponse:
    q = request.GET.get("q", "").strip()[:100]
    status = request.GET.get("status", "")
    category = request.GET.get("category", "").strip()[:60]
    agents = visible_agents(request)
    if q:
        agents = agents.filter(Q(name__icontains=q) | Q(description__icontains=q) | Q(role__icontains=q))
    if status in Agent.Status.values:
        agents = agents.filter(status=status)
    else:
        status = ""
        agents = agents.not_archived()
    if category:
        agents = agents.filter(category__iexact=category)
    agents = agents.order_by(F("last_activity_at").desc(nulls_last=True), "-updated_at", "-pk")
    page = Paginator(agents, PAGE_SIZE).get_page(request.GET.get("page"))
    categories = (
        visible_agents(request)
        .exclude(category="")
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()
    )
    filters = request.GET.copy()
    filters.pop("page", None)
    context = {
        "page": page,
        "q": q,
        "status": status,
        "category": category,
        "categories": list(categories),
        "statuses": Agent.Status.choices,
        "filter_query": filters.urlencode(),
        "filtered": bool(q or status or category),
        "can_write": can_write(request),
        **_hire_context(HireForm()),
    }
    template = (
        "agents/index.html#grid"
        if request.htmx and request.htmx.target == "agent-grid"
        else "agents/index.html"
    )
    return TemplateResponse(request, template, context)


@org_role_required(Role.MEMBER)
def hire(request: AuthedHttpRequest) -> HttpResponse:
    form = HireForm(request.POST or None, initial={"template": request.GET.get("role", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        role = ROLE_TEMPLATES_BY_ID[data["template"]]
        config = services.default_config(
            org=request.org, instructions=template_instructions(role, data["persona"])
        )
        config["tools"] = [{"type": t} for t in role.tools]
        try:
            agent = services.agent_create(
                org=request.org,
                by=request.user,
                name=data["name"],
                config=config,
                publish=True,
                avatar=data["avatar"],
                role=role.id,
                category=role.category,
                description=role.description,
            )
        except (ServiceError, ConfigError) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{agent.avatar} {agent.name} joined the team. Say hello!")
            return redirect("agents_detail", agent_id=agent.pk)
    return TemplateResponse(request, "agents/hire.html", _hire_context(form))


# ---------------------------------------------------------------- tabs


@org_role_required()
def settings_tab(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    initial = {
        f: getattr(agent, f) for f in ("name", "description", "avatar", "role", "category", "visibility")
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not can_write(request):
            raise PermissionDenied("Viewers cannot change agents.")
        if form.is_valid():
            services.agent_update(agent=agent, by=request.user, **form.cleaned_data)
            messages.success(request, "Profile saved.")
            return redirect("agents_settings", agent_id=agent.pk)
    return agent_page(
        request, agent, "settings", "agents/settings.html", {"form": form, "avatar_sets": AVATAR_SETS}
    )


@org_role_required(Role.MEMBER)
@require_POST
def archive(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    services.agent_archive(agent=agent)
    messages.success(request, f"{agent.name} is archived. It keeps its history and can be restored.")
    return redirect("agents_settings", agent_id=agent.pk)


@org_role_required(Role.MEMBER)
@require_POST
def restore(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    if agent.is_archived:
        try:
            services.agent_restore(agent=agent)
        except ServiceError as exc:
            return service_error_response(request, exc, f"/agents/{agent.pk}/settings/")
        messages.success(request, f"{agent.name} is back.")
    return redirect("agents_settings", agent_id=agent.pk)


@org_role_required(Role.MEMBER)
@require_POST
def clone(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    try:
        copy = services.agent_clone(agent=agent, by=request.user)
    except ServiceError as exc:
        return service_error_response(request, exc, f"/agents/{agent.pk}/settings/")
    messages.success(request, f"Cloned into {copy.name}: same config and tools, no history.")
    return redirect("agents_settings", agent_id=copy.pk)


def _current_config(agent: Agent) -> tuple[dict, bool]:
    """The config runs use (published), else the latest draft; and whether it is the draft."""
    if agent.published_version is not None:
        return agent.published_version.config, False
    return services.agent_config_draft(agent=agent), True


@org_role_required()
def tools_tab(request: AuthedHttpRequest, agent_id: int) -> TemplateResponse:
    agent = agent_or_404(request, agent_id)
    config, is_draft = _current_config(agent)
    labels = {t.type: t for t in tool_types()}
    names: dict[Any, str] = dict(Agent.objects.for_org(request.org).values_list("pk", "name"))
    tools = [
        {
            **t,
            "label": labels[t["type"]].label if t["type"] in labels else t["type"],
            "target": names.get((t.get("config") or {}).get("agent_id")),
        }
        for t in config.get("tools") or []
    ]
    handoffs = [
        {**h, "target": names.get(h["agent_id"], f"#{h['agent_id']}")} for h in config.get("handoffs") or []
    ]
    return agent_page(
        request,
        agent,
        "tools",
        "agents/tools.html",
        {
            "tools": tools,
            "handoffs": handoffs,
            "config": config,
            "is_draft": is_draft,
            "catalog": tool_types(),
        },
    )


@org_role_required()
def knowledge_tab(request: AuthedHttpRequest, agent_id: int) -> TemplateResponse:
    agent = agent_or_404(request, agent_id)
    config, is_draft = _current_config(agent)
    knowledge = config.get("knowledge") or {}
    return agent_page(
        request, agent, "knowledge", "agents/knowledge.html", {"knowledge": knowledge, "is_draft": is_draft}
    )
