"""/api/v1/sessions/ (conversations and their messages, feedback) and per-user agent memory.

Conversations and memories belong to one person: each caller sees only their own, within the org.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import OrgContext
from agents import services
from agents.api.common import ERRORS, agent_or_404, call, doc, org_for, paginate, person, query_int, writer
from agents.models import AgentMemory, ChatSession, Message
from agents.serializers import (
    FeedbackInput,
    MemoryInput,
    MemoryOutput,
    MessageOutput,
    SessionInput,
    SessionOutput,
)
from config.api import ApiError


def _sessions(request: Request, write: bool = False) -> tuple[OrgContext, Any]:
    ctx = writer(request) if write else org_for(request)
    return ctx, ChatSession.objects.for_org(ctx.org).filter(user=person(request, ctx))


def _session_or_404(request: Request, session_id: int, write: bool = False) -> ChatSession:
    _, sessions = _sessions(request, write)
    session = sessions.filter(pk=session_id).first()
    if session is None:
        raise ApiError(404, "not_found", "No such conversation.")
    return session


@doc(
    responses={200: SessionOutput(many=True), **ERRORS},
    parameters=[OpenApiParameter("agent", int, description="Only conversations with this agent.")],
    tags=["sessions"],
)
@api_view(["GET"])
def session_list(request: Request) -> Response:
    """Your conversations, most recent first."""
    ctx, sessions = _sessions(request)
    agent_id = query_int(request, "agent")
    if agent_id is not None:
        sessions = sessions.filter(agent=agent_or_404(request, ctx, agent_id))
    return paginate(request, sessions.order_by("-updated_at", "-id"), SessionOutput)


@doc(methods=["GET"], responses={200: SessionOutput, **ERRORS}, tags=["sessions"])
@doc(methods=["PATCH"], request=SessionInput, responses={200: SessionOutput, **ERRORS}, tags=["sessions"])
@doc(methods=["DELETE"], responses={204: None, **ERRORS}, tags=["sessions"])
@api_view(["GET", "PATCH", "DELETE"])
def session_detail(request: Request, session_id: int) -> Response:
    session = _session_or_404(request, session_id, write=request.method != "GET")
    if request.method == "DELETE":
        session.delete()  # runs keep their record; their session link becomes null
        return Response(status=status.HTTP_204_NO_CONTENT)
    if request.method == "PATCH":
        body = SessionInput(data=request.data)
        body.is_valid(raise_exception=True)
        session.title = body.validated_data["title"].strip()
        session.save(update_fields=["title", "updated_at"])
    return Response(SessionOutput(session).data)


@doc(responses={200: MessageOutput(many=True), **ERRORS}, tags=["sessions"])
@api_view(["GET"])
def session_messages(request: Request, session_id: int) -> Response:
    """The conversation's messages, oldest first."""
    session = _session_or_404(request, session_id)
    return paginate(request, session.messages.order_by("created_at", "id"), MessageOutput)


@doc(request=FeedbackInput, responses={200: MessageOutput, **ERRORS}, tags=["sessions"])
@api_view(["POST"])
def message_feedback(request: Request, message_id: int) -> Response:
    """Thumbs up (1), down (-1) or neither (0) on an assistant message of your conversation."""
    _, sessions = _sessions(request, write=True)
    message = Message.objects.filter(session__in=sessions, pk=message_id).first()
    if message is None:
        raise ApiError(404, "not_found", "No such message.")
    body = FeedbackInput(data=request.data)
    body.is_valid(raise_exception=True)
    if message.role != Message.Role.ASSISTANT:
        raise ApiError(400, "invalid", "Only the agent's answers take feedback.")
    message.feedback = body.validated_data["value"]
    message.save(update_fields=["feedback"])
    return Response(MessageOutput(message).data)


# ------------------------------------------------------------------ memory


@doc(methods=["GET"], responses={200: MemoryOutput(many=True), **ERRORS}, tags=["agents"])
@doc(methods=["POST"], request=MemoryInput, responses={201: MemoryOutput, **ERRORS}, tags=["agents"])
@api_view(["GET", "POST"])
def memory_list(request: Request, agent_id: int) -> Response:
    """What the agent remembers about you (only yours). You can add, edit and delete entries."""
    ctx = org_for(request) if request.method == "GET" else writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    user = person(request, ctx)
    if request.method == "POST":
        body = MemoryInput(data=request.data)
        body.is_valid(raise_exception=True)
        memory = call(services.memory_add, agent=agent, user=user, content=body.validated_data["content"])
        return Response(MemoryOutput(memory).data, status=status.HTTP_201_CREATED)
    memories = AgentMemory.objects.for_org(ctx.org).filter(agent=agent, user=user)
    return paginate(request, memories.order_by("-updated_at", "-id"), MemoryOutput)


@doc(methods=["PUT"], request=MemoryInput, responses={200: MemoryOutput, **ERRORS}, tags=["agents"])
@doc(methods=["DELETE"], responses={204: None, **ERRORS}, tags=["agents"])
@api_view(["PUT", "DELETE"])
def memory_detail(request: Request, agent_id: int, memory_id: int) -> Response:
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    memory = (
        AgentMemory.objects.for_org(ctx.org)
        .filter(agent=agent, user=person(request, ctx), pk=memory_id)
        .first()
    )
    if memory is None:
        raise ApiError(404, "not_found", "No such memory.")
    if request.method == "DELETE":
        memory.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = MemoryInput(data=request.data)
    body.is_valid(raise_exception=True)
    memory = call(services.memory_update, memory=memory, content=body.validated_data["content"])
    return Response(MemoryOutput(memory).data)
