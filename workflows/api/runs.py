"""Running a workflow (`POST /api/v1/workflows/<id>/run`) and the runs API (`/api/v1/workflow-runs/...`)."""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.common import ERRORS, ERRORS_409, acting_user, doc, org_for, paginate, query_int, writer
from config.api import ApiError, ErrorEnvelopeSerializer
from workflows import services
from workflows.api.common import call, run_or_404, workflow_or_404
from workflows.models import StepRun, WorkflowRun, WorkflowRunEvent
from workflows.serializers import (
    WorkflowRunDetailOutput,
    WorkflowRunEventOutput,
    WorkflowRunInput,
    WorkflowRunOutput,
    WorkflowStepLogsOutput,
)

TAGS = ["workflow-runs"]
EVENTS_PAGE = 500


def _run_detail(ctx_run: WorkflowRun, code: int = status.HTTP_200_OK) -> Response:
    run = (
        WorkflowRun.objects.select_related("version")
        .prefetch_related(Prefetch("steps", queryset=StepRun.objects.order_by("created_at", "id")))
        .get(pk=ctx_run.pk)
    )
    response = Response(WorkflowRunDetailOutput(run).data, status=code)
    if code == status.HTTP_202_ACCEPTED:
        response["Location"] = f"/api/v1/workflow-runs/{run.pk}"
    return response


@doc(
    request=WorkflowRunInput,
    responses={202: WorkflowRunDetailOutput, **ERRORS_409, 413: ErrorEnvelopeSerializer},
    tags=TAGS,
    operation_id="workflows_run",
    description="Start a run of the published version and answer at once (202); follow it with "
    "`GET /api/v1/workflow-runs/{id}` or its `events`. With `test: true` the latest version runs "
    "instead, even unpublished (a test run). A workflow with no published version is a 409 "
    "`not_published`; an archived one a 409 `archived`.",
)
@api_view(["POST"])
def workflow_run(request: Request, workflow_id: int) -> Response:
    ctx = writer(request)
    workflow = workflow_or_404(ctx, workflow_id)
    body = WorkflowRunInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    version = None
    source = WorkflowRun.Source.API
    if data["test"]:
        version = workflow.latest_version()
        source = WorkflowRun.Source.TEST
    run = call(
        services.run_start,
        workflow=workflow,
        by=acting_user(request, ctx),
        input=data["input"],
        source=source,
        version=version,
    )
    return _run_detail(run, status.HTTP_202_ACCEPTED)


@doc(
    responses={200: WorkflowRunOutput(many=True), **ERRORS},
    parameters=[OpenApiParameter("status", str, enum=WorkflowRun.Status.values)],
    tags=TAGS,
)
@api_view(["GET"])
def workflow_runs(request: Request, workflow_id: int) -> Response:
    """The workflow's runs, newest first."""
    ctx = org_for(request)
    workflow = workflow_or_404(ctx, workflow_id)
    queryset = WorkflowRun.objects.for_org(ctx.org).filter(workflow=workflow).select_related("version")
    wanted = request.query_params.get("status")
    if wanted:
        if wanted not in WorkflowRun.Status.values:
            raise ValidationError({"status": [f"Use one of {', '.join(WorkflowRun.Status.values)}."]})
        queryset = queryset.filter(status=wanted)
    queryset = queryset.defer("context").order_by("-created_at", "-id")
    return paginate(request, queryset, WorkflowRunOutput)


@doc(responses={200: WorkflowRunDetailOutput, **ERRORS}, tags=TAGS)
@api_view(["GET"])
def run_detail(request: Request, run_id: int) -> Response:
    """Status, input and output, tokens, cost and timings of one run, with its steps in order."""
    return _run_detail(run_or_404(org_for(request), run_id))


@doc(request=None, responses={200: WorkflowRunDetailOutput, **ERRORS_409}, tags=TAGS)
@api_view(["POST"])
def run_cancel(request: Request, run_id: int) -> Response:
    """Stop the run and its unfinished steps. A finished run is a 409."""
    ctx = writer(request)
    run = call(services.run_cancel, run=run_or_404(ctx, run_id), by=acting_user(request, ctx))
    return _run_detail(run)


@doc(
    responses={200: WorkflowRunEventOutput(many=True), **ERRORS},
    parameters=[OpenApiParameter("after", int, description="Only events with a greater sequence number.")],
    tags=TAGS,
    description=f"The run's events after `after`, oldest first (at most {EVENTS_PAGE} per call); the "
    "last one is `done`. Live, the same events go to the websocket group `workflow_run.<id>`.",
)
@api_view(["GET"])
def run_events(request: Request, run_id: int) -> Response:
    run = run_or_404(org_for(request), run_id)
    after = query_int(request, "after") or 0
    events = WorkflowRunEvent.objects.filter(run=run, seq__gt=after).order_by("seq")[:EVENTS_PAGE]
    return Response(WorkflowRunEventOutput(events, many=True).data)


@doc(
    responses={200: WorkflowStepLogsOutput, **ERRORS},
    tags=TAGS,
    description="The logs of one step of a run. (Doc 003's `/api/v1/tasks/{id}/logs` already serves "
    "agent tasks, so workflow steps have their logs here.)",
)
@api_view(["GET"])
def step_logs(request: Request, run_id: int, step_id: int) -> Response:
    run = run_or_404(org_for(request), run_id)
    step = StepRun.objects.filter(run=run, pk=step_id).first()
    if step is None:
        raise ApiError(404, "not_found", "This run has no such step.")
    return Response(
        WorkflowStepLogsOutput(
            {
                "step_id": step.pk,
                "run_id": run.pk,
                "node_id": step.node_id,
                "node_type": step.node_type,
                "status": step.status,
                "error": step.error,
                "logs": step.logs or [],
            }
        ).data
    )
