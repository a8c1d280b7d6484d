"""The Tasks tab: give the agent work; it runs in the background and earns XP when it succeeds."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect

from accounts.decorators import org_role_required
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from agents import services
from agents.forms import TaskForm
from agents.models import PRIORITY_XP, Task
from agents.views.common import agent_or_404, agent_page, can_write


@org_role_required()
def tasks_tab(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    form = TaskForm(request.POST or None)
    if request.method == "POST":
        if not can_write(request):
            raise PermissionDenied("Viewers cannot give agents tasks.")
        if form.is_valid():
            try:
                task = services.task_create(agent=agent, by=request.user, **form.cleaned_data)
            except ServiceError as exc:
                from billing.views.prompts import credits_required, is_billing_refusal

                if is_billing_refusal(exc):
                    return credits_required(request, exc, request.path)
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, f"Task “{task.title}” started: worth {task.xp_reward} XP when done."
                )
                return redirect("agents_tasks", agent_id=agent.pk)
    tasks = Task.objects.for_org(request.org).filter(agent=agent).select_related("run", "created_by")
    page = Paginator(tasks.order_by("-created_at", "-pk"), 25).get_page(request.GET.get("page"))
    return agent_page(
        request, agent, "tasks", "agents/tasks.html", {"form": form, "page": page, "priority_xp": PRIORITY_XP}
    )
