"""Running an agent (`POST /api/v1/agents/<id>/run`) and the runs API (`/api/v1/runs/...`).

The run endpoint is a DRF view (authentication, checks, CSRF for browser sessions) that creates the
run, then streams its events as SSE or waits for the worker's done signal. Under daphne the wait is a
`DeferredResponse`, awaited on the event loop, so a waiting client holds no thread.
"""

from __future__ import annotations

import json
from functools import partial

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.decorators import api_view, renderer_classes
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from agents import services
from agents.api.common import (
    ERRORS,
    ERRORS_409,
    acting_user,
    agent_or_404,
    call,
    doc,
    org_for,
    paginate,
    query_int,
    writer,
)
from agents.api.sse import EventStreamRenderer, sse_message, sse_response
from agents.models import AgentRun, ChatSession, RunEvent
from agents.runtime.events import wait_done, wait_done_blocking
from agents.serializers import (
    RunAcceptedOutput,
    RunEventOutput,
    RunInput,
    RunOutput,
    RunResultOutput,
    run_result,
)
from config.api import ApiError
from config.db import release
from config.handlers import DeferredResponse, may_defer

RUN_WAIT_SECONDS = 120.0
EVENTS_PAGE = 1000


def _accepted(run_id: int, session_id: int | None, status: str) -> dict[str, object]:
    return {"run_id": run_id, "session_id": session_id, "status": status}


@doc(
    request=RunInput,
    responses={
        200: RunResultOutput,
        202: RunAcceptedOutput,
        (200, "text/event-stream"): OpenApiTypes.STR,
        **ERRORS_409,
    },
    tags=["runs"],
    operation_id="agents_run",
    description="Run the agent's published version. Without `stream` the call waits for the result "
    f"(up to {int(RUN_WAIT_SECONDS)} s; after that it answers 202 with the run id to poll `/runs/{{id}}`). "
    "With `stream: true` the answer is Server-Sent Events: first a `run` event with the ids, then every "
    "run event (`id: <seq>`, `event: <type>`, `data: <json>`) until `done`. An archived agent is a 409.",
)
@api_view(["POST"])
@renderer_classes([JSONRenderer, EventStreamRenderer])
def agent_run(request: Request, agent_id: int) -> HttpResponseBase:
    """Checks and creates the run, then streams it or waits for its answer: on the event loop when the
    server can finish the response there (`DeferredResponse`, daphne), else in this thread."""
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    body = RunInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    user = acting_user(request, ctx)
    session = None
    if data.get("session_id"):
        session = (
            ChatSession.objects.for_org(ctx.org).filter(pk=data["session_id"], agent=agent, user=user).first()
        )
        if session is None:
            raise ApiError(404, "not_found", "No such conversation with this agent.")
    run = call(
        services.run_create,
        agent=agent,
        user=user,
        input=data["input"],
        session=session,
        source=AgentRun.Source.API,
        streamed=data["stream"],
    )
    if data["stream"]:
        prelude = sse_message("run", _accepted(run.pk, run.session_id, AgentRun.Status.QUEUED))
        stream = sse_response(run.pk, prelude=prelude)
        stream["X-Run-Id"] = str(run.pk)
        return stream
    if may_defer(request):
        return DeferredResponse(partial(_answer, run.pk))
    release()  # the wait below may be long: it holds no database connection
    signal = wait_done_blocking(run.pk, _wait_seconds())
    return _finished_from_signal(run.pk, signal) or _answer_from_row(run.pk)


def _wait_seconds() -> float:
    return float(getattr(settings, "AGENT_RUN_WAIT_SECONDS", RUN_WAIT_SECONDS))


async def _answer(run_id: int) -> HttpResponse:
    """The answer of a run, awaited on the event loop: no thread waits with it. The request's thread
    serves other requests by now, so a read-back (no signal came) takes any thread."""
    signal = await wait_done(run_id, _wait_seconds())
    return _finished_from_signal(run_id, signal) or await sync_to_async(
        _answer_from_row, thread_sensitive=False
    )(run_id)


def _finished_from_signal(run_id: int, signal: str | None) -> HttpResponse | None:
    """The answer from the final fields the worker sent with "done", if it sent them: no read-back."""
    if not signal or not signal.startswith("{"):
        return None
    try:
        fields = json.loads(signal).get("run")
    except ValueError:
        return None
    if not isinstance(fields, dict) or fields.get("status") not in AgentRun.FINISHED:
        return None
    return JsonResponse(
        run_result(AgentRun(pk=run_id, **{k: fields[k] for k in RESULT_FIELDS if k in fields}))
    )


RESULT_FIELDS = (
    "session_id",
    "status",
    "output",
    "output_json",
    "input_tokens",
    "output_tokens",
    "cost",
    "latency_ms",
    "error",
)


def _answer_from_row(run_id: int) -> HttpResponse:
    """The run as stored: its result if it finished, else 202 with where to poll."""
    try:
        run = AgentRun.objects.get(pk=run_id)
    finally:
        release()
    if not run.is_finished:
        accepted = JsonResponse(_accepted(run.pk, run.session_id, run.status), status=202)
        accepted["Location"] = f"/api/v1/runs/{run.pk}"
        return accepted
    return JsonResponse(run_result(run))


# ------------------------------------------------------------------ runs API


def _run_or_404(request: Request, run_id: int, write: bool = False) -> AgentRun:
    ctx = writer(request) if write else org_for(request)
    run = AgentRun.objects.for_org(ctx.org).select_related("version").filter(pk=run_id).first()
    if run is None:
        raise ApiError(404, "not_found", "No such run in this organization.")
    return run


@doc(
    responses={200: RunOutput(many=True), **ERRORS},
    parameters=[
        OpenApiParameter("agent", int),
        OpenApiParameter("session", int),
        OpenApiParameter("status", str, enum=AgentRun.Status.values),
    ],
    tags=["runs"],
)
@api_view(["GET"])
def run_list(request: Request) -> Response:
    ctx = org_for(request)
    queryset = AgentRun.objects.for_org(ctx.org).select_related("version")
    agent_id = query_int(request, "agent")
    if agent_id is not None:
        queryset = queryset.filter(agent=agent_or_404(request, ctx, agent_id))
    session_id = query_int(request, "session")
    if session_id is not None:
        queryset = queryset.filter(session_id=session_id)
    wanted = request.query_params.get("status")
    if wanted:
        if wanted not in AgentRun.Status.values:
            raise ValidationError({"status": [f"Use one of {', '.join(AgentRun.Status.values)}."]})
        queryset = queryset.filter(status=wanted)
    return paginate(request, queryset.order_by("-created_at", "-id"), RunOutput)


@doc(responses={200: RunOutput, **ERRORS}, tags=["runs"])
@api_view(["GET"])
def run_detail(request: Request, run_id: int) -> Response:
    """Status, input and output, tokens, cost, latency, error and the trace of one run."""
    return Response(RunOutput(_run_or_404(request, run_id)).data)


@doc(
    responses={200: RunEventOutput(many=True), (200, "text/event-stream"): OpenApiTypes.STR, **ERRORS},
    parameters=[OpenApiParameter("after", int, description="Only events with a greater sequence number.")],
    tags=["runs"],
    description="The run's events after `after`, oldest first (at most 1000 per call). With "
    "`Accept: text/event-stream` the same events as Server-Sent Events, live until `done`; a "
    "reconnecting client may send `Last-Event-ID` instead of `after`.",
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, EventStreamRenderer])
def run_events(request: Request, run_id: int) -> HttpResponseBase:
    run = _run_or_404(request, run_id)
    after = query_int(request, "after") or 0
    if request.accepted_renderer.format == EventStreamRenderer.format:
        last_id = (request.headers.get("Last-Event-ID") or "").strip()
        if last_id.isdigit() and len(last_id) < 10:
            after = max(after, int(last_id))
        return sse_response(run.pk, after)
    events = RunEvent.objects.filter(run=run, seq__gt=after).order_by("seq")[:EVENTS_PAGE]
    return Response(RunEventOutput(events, many=True).data)


@doc(request=None, responses={200: RunOutput, **ERRORS}, tags=["runs"])
@api_view(["POST"])
def run_cancel(request: Request, run_id: int) -> Response:
    """Stop the run: a queued run at once, a running one within a second. A finished run is unchanged."""
    run = call(services.run_cancel, run=_run_or_404(request, run_id, write=True))
    return Response(RunOutput(run).data)


class DecisionInput(serializers.Serializer):
    approved = serializers.BooleanField(
        help_text="Run the tool calls the agent asked about (true) or decline them."
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


@doc(request=DecisionInput, responses={200: RunOutput, **ERRORS}, tags=["runs"])
@api_view(["POST"])
def run_approve(request: Request, run_id: int) -> Response:
    """Decide a run that waits for approval ("ask before running" tools); it then resumes on a worker."""
    run = _run_or_404(request, run_id, write=True)
    body = DecisionInput(data=request.data)
    body.is_valid(raise_exception=True)
    ctx = writer(request)
    run = call(
        services.run_decide,
        run=run,
        approved=body.validated_data["approved"],
        by=acting_user(request, ctx),
        note=body.validated_data["note"],
    )
    return Response(RunOutput(run).data)
