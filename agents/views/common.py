"""Access helpers shared by the agents views. Every lookup starts from request.org; a miss is a 404."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from accounts.models import Role, role_at_least
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from agents.models import Agent, AgentQuerySet

TABS = (
    ("chat", "Chat", "agents_detail"),
    ("runs", "Runs", "agents_runs"),
    ("tasks", "Tasks", "agents_tasks"),
    ("memory", "Memory", "agents_memory"),
    ("tools", "Tools", "agents_tools"),
    ("knowledge", "Knowledge", "agents_knowledge"),
    ("versions", "Versions", "agents_versions"),
    ("settings", "Settings", "agents_settings"),
)


def visible_agents(request: AuthedHttpRequest) -> AgentQuerySet:
    """The org's agents this user may see: everything but other people's private agents."""
    return Agent.objects.for_org(request.org).filter(
        ~Q(visibility=Agent.Visibility.PRIVATE) | Q(created_by=request.user)
    )


def agent_or_404(request: AuthedHttpRequest, agent_id: int) -> Agent:
    agent = visible_agents(request).select_related("published_version").filter(pk=agent_id).first()
    if agent is None:
        raise Http404("No such agent.")
    return agent


def can_write(request: AuthedHttpRequest) -> bool:
    return bool(request.org_role and role_at_least(request.org_role, Role.MEMBER))


def agent_page(
    request: AuthedHttpRequest, agent: Agent, tab: str, template: str, context: dict[str, Any]
) -> TemplateResponse:
    """One tab of the agent page: header (level, XP, skills) + tab nav + the tab's own context."""
    base = {"agent": agent, "tab": tab, "tabs": TABS, "can_write": can_write(request)}
    base.update(context)
    return TemplateResponse(request, template, base)


def service_error_response(request: AuthedHttpRequest, exc: ServiceError, fallback_url: str) -> HttpResponse:
    """A refused action: 404s stay 404s; others go back with the message (htmx gets it inline)."""
    from django.contrib import messages

    if exc.status == 404:
        raise Http404(str(exc))
    from billing.views.prompts import credits_required, is_billing_refusal

    if is_billing_refusal(exc):  # out of credits, a plan limit, a cost cap: say so, with the way out
        return credits_required(request, exc, fallback_url, target="#agent-alerts")
    if request.htmx:
        # htmx swaps only 2xx answers: the refusal comes back as a 200 aimed at the alert slot.
        response = TemplateResponse(request, "agents/_alert.html", {"error": str(exc)})
        response["HX-Retarget"] = "#agent-alerts"
        response["HX-Reswap"] = "innerHTML"
        return response
    messages.error(request, str(exc))
    return redirect(fallback_url)
