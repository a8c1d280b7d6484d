"""Attach knowledge bases to an agent, and detach them, from the agent's Knowledge tab.

Each change is a new version of the agent's config. It is published at once when the agent had no
unpublished edits (so the change is what runs next); otherwise it joins the pending draft."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from agents.config import ConfigError
from agents.models import Agent
from agents.views.common import agent_or_404
from knowledge import services
from knowledge.forms import AttachForm
from knowledge.models import KnowledgeBase


def _publish_with_change(agent: Agent) -> bool:
    latest = agent.latest_version()
    return latest is not None and agent.published_version_id == latest.pk


def _done(request: AuthedHttpRequest, agent: Agent, published: bool, what: str) -> None:
    version = agent.latest_version()
    number = version.number if version else "?"
    if published:
        messages.success(request, f"{what} {agent.name} uses it from the next message (v{number}).")
    else:
        messages.success(
            request, f"{what} Saved in draft v{number}; publish it on the Versions tab to use it in chats."
        )


@org_role_required(Role.MEMBER)
@require_POST
def agent_attach(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    attached, _ = services.agent_knowledge_bases(agent=agent)
    form = AttachForm(request.POST, org=request.org, exclude=attached)
    if not form.is_valid():
        messages.error(request, "Choose one of this organization's knowledge bases.")
        return redirect("agents_knowledge", agent_id=agent.pk)
    kb = KnowledgeBase.objects.for_org(request.org).get(pk=form.cleaned_data["knowledge_base"])
    publish = _publish_with_change(agent)
    try:
        services.agent_knowledge_attach(agent=agent, by=request.user, kb=kb, publish=publish)
    except (ServiceError, ConfigError) as exc:
        messages.error(request, str(exc))
    else:
        _done(request, agent, publish, f"Attached “{kb.name}”.")
    return redirect("agents_knowledge", agent_id=agent.pk)


@org_role_required(Role.MEMBER)
@require_POST
def agent_detach(request: AuthedHttpRequest, agent_id: int, kb_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    publish = _publish_with_change(agent)
    try:
        services.agent_knowledge_detach(agent=agent, by=request.user, kb_id=kb_id, publish=publish)
    except (ServiceError, ConfigError) as exc:
        messages.error(request, str(exc))
    else:
        _done(request, agent, publish, "Detached the knowledge base.")
    return redirect("agents_knowledge", agent_id=agent.pk)
