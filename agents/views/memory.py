"""The Memory tab: this user's long-term memories of the agent, and the agent's context entries."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from agents import services
from agents.forms import ContextForm, MemoryForm
from agents.models import Agent, AgentContextEntry, AgentMemory
from agents.views.common import agent_or_404, agent_page


def _memory_page(
    request: AuthedHttpRequest,
    agent: Agent,
    memory_form: MemoryForm | None = None,
    context_form: ContextForm | None = None,
) -> TemplateResponse:
    config = (
        agent.published_version.config if agent.published_version else None
    ) or services.agent_config_draft(agent=agent)
    return agent_page(
        request,
        agent,
        "memory",
        "agents/memory.html",
        {
            "memories": AgentMemory.objects.for_org(request.org).filter(agent=agent, user=request.user),
            "entries": AgentContextEntry.objects.for_org(request.org).filter(agent=agent),
            "memory_form": memory_form or MemoryForm(),
            "context_form": context_form or ContextForm(),
            "memory_enabled": bool((config.get("memory") or {}).get("enabled")),
        },
    )


def _memory(request: AuthedHttpRequest, agent: Agent, memory_id: int) -> AgentMemory:
    memory = (
        AgentMemory.objects.for_org(request.org).filter(pk=memory_id, agent=agent, user=request.user).first()
    )
    if memory is None:
        raise Http404("No such memory.")
    return memory


@org_role_required()
def memory_tab(request: AuthedHttpRequest, agent_id: int) -> TemplateResponse:
    return _memory_page(request, agent_or_404(request, agent_id))


@org_role_required(Role.MEMBER)
@require_POST
def memory_add(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    form = MemoryForm(request.POST)
    if form.is_valid():
        try:
            services.memory_add(agent=agent, user=request.user, content=form.cleaned_data["content"])
        except ServiceError as exc:
            form.add_error("content", str(exc))
        else:
            messages.success(request, "Memory added.")
            return redirect("agents_memory", agent_id=agent.pk)
    return _memory_page(request, agent, memory_form=form)


@org_role_required(Role.MEMBER)
@require_POST
def memory_edit(request: AuthedHttpRequest, agent_id: int, memory_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    memory = _memory(request, agent, memory_id)
    form = MemoryForm(request.POST)
    if form.is_valid():
        try:
            services.memory_update(memory=memory, content=form.cleaned_data["content"])
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Memory updated.")
    else:
        messages.error(request, "A memory needs 1 to 2000 characters.")
    return redirect("agents_memory", agent_id=agent.pk)


@org_role_required(Role.MEMBER)
@require_POST
def memory_delete(request: AuthedHttpRequest, agent_id: int, memory_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    _memory(request, agent, memory_id).delete()
    messages.success(request, "Memory forgotten.")
    return redirect("agents_memory", agent_id=agent.pk)


@org_role_required(Role.MEMBER)
@require_POST
def context_set(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    form = ContextForm(request.POST)
    if form.is_valid():
        try:
            services.context_set(agent=agent, key=form.cleaned_data["key"], value=form.cleaned_data["value"])
        except ServiceError as exc:
            form.add_error("key", str(exc))
        else:
            messages.success(request, f"Context “{form.cleaned_data['key'].strip()}” saved.")
            return redirect("agents_memory", agent_id=agent.pk)
    return _memory_page(request, agent, context_form=form)


@org_role_required(Role.MEMBER)
@require_POST
def context_delete(request: AuthedHttpRequest, agent_id: int, entry_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    entry = AgentContextEntry.objects.for_org(request.org).filter(pk=entry_id, agent=agent).first()
    if entry is None:
        raise Http404("No such context entry.")
    entry.delete()
    messages.success(request, f"Context “{entry.key}” removed.")
    return redirect("agents_memory", agent_id=agent.pk)
