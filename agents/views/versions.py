"""The Versions tab: history, a diff between any two versions, publish and rollback."""

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
from agents.config import ConfigError
from agents.models import Agent, AgentVersion
from agents.views.common import agent_or_404, agent_page
from config.converters import as_pk


def _version(request: AuthedHttpRequest, agent: Agent, version_id: int) -> AgentVersion:
    version = AgentVersion.objects.for_org(request.org).filter(agent=agent, pk=version_id).first()
    if version is None:
        raise Http404("No such version.")
    return version


def _diff_lines(lines: list[str]) -> list[tuple[str, str]]:
    kinds = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kinds.append(("file", line))
        elif line.startswith("@@"):
            kinds.append(("hunk", line))
        elif line.startswith("+"):
            kinds.append(("add", line))
        elif line.startswith("-"):
            kinds.append(("del", line))
        else:
            kinds.append(("same", line))
    return kinds


@org_role_required()
def versions_tab(request: AuthedHttpRequest, agent_id: int) -> TemplateResponse:
    agent = agent_or_404(request, agent_id)
    versions = list(
        AgentVersion.objects.for_org(request.org).filter(agent=agent).select_related("created_by")
    )
    by_number = {v.number: v for v in versions}
    new = by_number.get(as_pk(request.GET.get("b")) or 0) or (versions[0] if versions else None)
    default_old = agent.published_version if agent.published_version_id != getattr(new, "pk", None) else None
    if default_old is None and len(versions) > 1:
        default_old = versions[1]
    old = by_number.get(as_pk(request.GET.get("a")) or 0) or default_old
    diff = None
    if old is not None and new is not None:
        diff = _diff_lines(services.version_diff(old=old, new=new))
    return agent_page(
        request,
        agent,
        "versions",
        "agents/versions.html",
        {"versions": versions, "old": old, "new": new, "diff": diff},
    )


@org_role_required(Role.MEMBER)
@require_POST
def version_publish(request: AuthedHttpRequest, agent_id: int, version_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    version = _version(request, agent, version_id)
    services.agent_publish(agent=agent, version=version, by=request.user)
    messages.success(request, f"Published v{version.number}. New runs use it.")
    return redirect("agents_versions", agent_id=agent.pk)


@org_role_required(Role.MEMBER)
@require_POST
def version_rollback(request: AuthedHttpRequest, agent_id: int, version_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    version = _version(request, agent, version_id)
    try:
        new = services.agent_rollback(agent=agent, version=version, by=request.user)
    except (ServiceError, ConfigError) as exc:
        # An old config may reference an agent that is gone; say so instead of failing.
        messages.error(request, f"Could not roll back to v{version.number}: {exc}")
    else:
        messages.success(
            request, f"Rolled back: v{new.number} is a copy of v{version.number} and is published."
        )
    return redirect("agents_versions", agent_id=agent.pk)
