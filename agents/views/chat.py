"""The Chat tab: conversations, sending (a queued run), stop, regenerate and feedback.

Sending answers with the user's bubble and an empty assistant bubble that connects to
/ws/runs/<id>/; the consumer streams `agents/_run_event.html` fragments into it.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from agents import services
from agents.forms import ChatForm
from agents.models import Agent, AgentRun, ChatSession, Message
from agents.templates_catalog import ROLE_TEMPLATES_BY_ID
from agents.views.common import agent_or_404, agent_page, service_error_response
from agents.views.turns import Turn, session_runs, turns_for
from config.converters import as_pk


def _sessions(request: AuthedHttpRequest, agent: Agent):  # type: ignore[no-untyped-def]
    return ChatSession.objects.for_org(request.org).filter(agent=agent, user=request.user)


def _chat_url(agent: Agent, session_id: int | None) -> str:
    url = reverse("agents_detail", kwargs={"agent_id": agent.pk})
    return f"{url}?session={session_id}" if session_id else url


@org_role_required()
def chat(request: AuthedHttpRequest, agent_id: int) -> TemplateResponse:
    agent = agent_or_404(request, agent_id)
    sessions = _sessions(request, agent)
    session = None
    if "session" in request.GET:
        session = sessions.filter(pk=as_pk(request.GET["session"]) or 0).first()
        if session is None:
            raise Http404("No such conversation.")
    template = ROLE_TEMPLATES_BY_ID.get(agent.role)
    return agent_page(
        request,
        agent,
        "chat",
        "agents/chat.html",
        {
            "sessions": sessions[:50],
            "session": session,
            "turns": turns_for(session_runs(session.pk)) if session else [],
            "form": ChatForm(initial={"session": session.pk if session else None}),
            "examples": template.examples if template else (),
        },
    )


def _turn_response(
    request: AuthedHttpRequest, agent: Agent, run: AgentRun, new_session: bool
) -> HttpResponse:
    url = _chat_url(agent, run.session_id)
    if not request.htmx:
        return redirect(url)
    context = {
        "agent": agent,
        "turn": Turn(run=run, live=True),
        "new_session": new_session,
        "session": run.session,
        "sessions": _sessions(request, agent)[:50],
        "can_write": True,
    }
    response = TemplateResponse(request, "agents/chat.html#turn_response", context)
    response["HX-Push-Url"] = url
    return response


@org_role_required(Role.MEMBER)
@require_POST
def chat_send(request: AuthedHttpRequest, agent_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    form = ChatForm(request.POST)
    if not form.is_valid():
        error = ServiceError("Say something first: the message is empty.", code="empty_input")
        return service_error_response(request, error, _chat_url(agent, None))
    session = None
    if form.cleaned_data["session"]:
        session = _sessions(request, agent).filter(pk=form.cleaned_data["session"]).first()
        if session is None:
            raise Http404("No such conversation.")
    try:
        run = services.run_create(
            agent=agent, user=request.user, input=form.cleaned_data["message"], session=session
        )
    except ServiceError as exc:
        return service_error_response(request, exc, _chat_url(agent, session.pk if session else None))
    return _turn_response(request, agent, run, new_session=session is None)


def _own_run(request: AuthedHttpRequest, agent: Agent, run_id: int) -> AgentRun:
    run = (
        AgentRun.objects.for_org(request.org).filter(agent=agent, pk=run_id).select_related("session").first()
    )
    if run is None:
        raise Http404("No such run.")
    return run


@org_role_required(Role.MEMBER)
@require_POST
def run_regenerate(request: AuthedHttpRequest, agent_id: int, run_id: int) -> HttpResponse:
    """Ask the same thing again in the same conversation."""
    agent = agent_or_404(request, agent_id)
    run = _own_run(request, agent, run_id)
    if run.session is None or run.session.user_id != request.user.pk:
        raise Http404("No such conversation.")
    try:
        new = services.run_create(agent=agent, user=request.user, input=run.input, session=run.session)
    except ServiceError as exc:
        return service_error_response(request, exc, _chat_url(agent, run.session_id))
    return _turn_response(request, agent, new, new_session=False)


@org_role_required(Role.MEMBER)
@require_POST
def run_cancel(request: AuthedHttpRequest, agent_id: int, run_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    run = services.run_cancel(run=_own_run(request, agent, run_id))
    if request.htmx:
        return HttpResponse(status=204)  # the run's `done` event redraws the bubble
    messages.info(request, "Stopped." if run.status == AgentRun.Status.CANCELLED else "Stopping…")
    if run.session_id:
        return redirect(_chat_url(agent, run.session_id))
    return redirect("agents_run_detail", agent_id=agent.pk, run_id=run.pk)


@org_role_required(Role.MEMBER)
@require_POST
def message_feedback(request: AuthedHttpRequest, agent_id: int, message_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    message = (
        Message.objects.for_org(request.org)
        .filter(pk=message_id, role=Message.Role.ASSISTANT, session__agent=agent, session__user=request.user)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    value = {"1": 1, "-1": -1, "0": 0}.get(request.POST.get("value", ""), 0)
    # Pressing the active thumb again clears it.
    message.feedback = 0 if value == message.feedback else value
    message.save(update_fields=["feedback"])
    if request.htmx:
        return TemplateResponse(request, "agents/_feedback.html", {"agent": agent, "message": message})
    return redirect(_chat_url(agent, message.session_id))


@org_role_required(Role.MEMBER)
@require_POST
def session_delete(request: AuthedHttpRequest, agent_id: int, session_id: int) -> HttpResponse:
    agent = agent_or_404(request, agent_id)
    session = _sessions(request, agent).filter(pk=session_id).first()
    if session is None:
        raise Http404("No such conversation.")
    session.delete()
    messages.success(request, "Conversation deleted.")
    return redirect("agents_detail", agent_id=agent.pk)


@org_role_required(Role.MEMBER)
@require_POST
def run_decide(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    """Approve or decline the tool calls a waiting run asked about (from the chat's approval notice)."""
    run = AgentRun.objects.for_org(request.org).select_related("agent").filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    approved = request.POST.get("decision") == "approve"
    try:
        services.run_decide(run=run, approved=approved, by=request.user, note=request.POST.get("note", ""))
    except ServiceError as exc:
        if request.htmx:
            return HttpResponse(f'<p class="field-error" role="alert">{exc}</p>')
        messages.error(request, str(exc))
    if request.htmx:
        label = "Approved: the agent continues." if approved else "Declined: the agent continues without it."
        return HttpResponse(f'<p class="text-sm" role="status">{label}</p>')
    return redirect(_chat_url(run.agent, run.session_id) if run.session_id else reverse("agents_index"))
