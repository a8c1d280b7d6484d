"""The seven-step builder: one form on one page (Alpine shows a step at a time), live validation per
step over htmx, and save = a new draft version (optionally published)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
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
from agents.forms import BUILTIN_TOOLS
from agents.models import AVATAR_SETS, Agent
from agents.runtime.providers import PROVIDERS
from agents.templates_catalog import INSTRUCTION_SNIPPETS, ROLE_TEMPLATES
from agents.views import builder_state as bs
from agents.views.common import agent_or_404


def _context(state: bs.BuilderState, agent: Agent | None, step: str | None = None) -> dict[str, Any]:
    return {
        "agent": agent,
        "state": state,
        "form": state.form,
        "http": state.http,
        "steps": state.steps(),
        "step": step or (state.first_error_step() if state.form.is_bound else "basics"),
        "avatar_sets": AVATAR_SETS,
        "builtin_tools": BUILTIN_TOOLS,
        "snippets": INSTRUCTION_SNIPPETS,
        "examples": ROLE_TEMPLATES,
        "provider_models": {pid: list(p.models) for pid, p in PROVIDERS.items()},
        "output_help": bs.output_type_help(),
    }


def _save(request: AuthedHttpRequest, state: bs.BuilderState, agent: Agent | None) -> Agent:
    publish = request.POST.get("action") == "publish"
    config = state.config or {}
    if agent is None:
        return services.agent_create(
            org=request.org, by=request.user, config=config, publish=publish, **state.profile
        )
    latest = agent.latest_version()
    # An unchanged config makes no new version: saving the profile alone should not bump history.
    changed = latest is None or latest.config != config
    services.agent_update(agent=agent, by=request.user, config=config if changed else None, **state.profile)
    if publish:
        version = agent.latest_version()
        if version is not None and version.pk != agent.published_version_id:
            services.agent_publish(agent=agent, version=version, by=request.user)
    return agent


def _builder(request: AuthedHttpRequest, agent: Agent | None) -> HttpResponse:
    data = request.POST if request.method == "POST" else None
    state = bs.state_for(org=request.org, agent=agent, data=data)
    if data is not None and bs.validate(state, org=request.org, agent=agent):
        try:
            saved = _save(request, state, agent)
        except ConfigError as exc:  # a race with another edit; show it like any other config error
            bs.attach_errors(state, exc.errors)
        except ServiceError as exc:
            state.step_errors.setdefault("basics", []).append(str(exc))
        else:
            if request.POST.get("action") == "publish":
                messages.success(request, f"Saved and published {saved.name}. New chats use this version.")
                return redirect("agents_detail", agent_id=saved.pk)
            messages.success(request, "Saved a new draft version. Publish it when you are happy with it.")
            return redirect("agents_versions", agent_id=saved.pk)
    step = request.GET.get("step") if request.GET.get("step") in bs.STEP_IDS else None
    return TemplateResponse(request, "agents/builder/builder.html", _context(state, agent, step))


@org_role_required(Role.MEMBER)
def builder_new(request: AuthedHttpRequest) -> HttpResponse:
    return _builder(request, None)


@org_role_required(Role.MEMBER)
def builder_edit(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    return _builder(request, agent_or_404(request, agent_id))


@org_role_required(Role.MEMBER)
@require_POST
def builder_validate(request: AuthedHttpRequest, agent_id: int | None = None) -> TemplateResponse:
    """Re-render one step with its errors. The whole form is posted so cross-step rules apply."""
    agent = agent_or_404(request, agent_id) if agent_id else None
    step = request.GET.get("step") if request.GET.get("step") in bs.STEP_IDS else "basics"
    state = bs.state_for(org=request.org, agent=agent, data=request.POST)
    bs.validate(state, org=request.org, agent=agent)
    context = _context(state, agent, step)
    context.update(current=next(s for s in context["steps"] if s["id"] == step), oob=True)
    return TemplateResponse(request, "agents/builder/_step.html", context)
