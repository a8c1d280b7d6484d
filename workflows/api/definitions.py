"""/api/v1/workflows/: the workflow, its versions (validate, publish, rollback) and its webhook trigger."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from agents.api.common import ERRORS, ERRORS_409, acting_user, doc, org_for, paginate, writer
from workflows import services
from workflows.api.common import call, version_or_404, workflow_or_404, workflows_for
from workflows.graph import GraphError, validate_graph
from workflows.models import Workflow
from workflows.serializers import (
    WorkflowDetailOutput,
    WorkflowGraphInput,
    WorkflowInput,
    WorkflowOutput,
    WorkflowPublishInput,
    WorkflowRollbackInput,
    WorkflowValidationOutput,
    WorkflowVersionOutput,
    WorkflowWebhookOutput,
)
from workflows.webhooks import SIGNATURE_HEADER

TAGS = ["workflows"]


def _detail(request: Request, workflow_id: int, code: int = status.HTTP_200_OK) -> Response:
    """Reload through the annotated queryset, so the answer shows what the services just wrote."""
    workflow = workflow_or_404(org_for(request), workflow_id)
    return Response(WorkflowDetailOutput(workflow).data, status=code)


@doc(
    methods=["GET"],
    responses={200: WorkflowOutput(many=True), **ERRORS},
    parameters=[
        OpenApiParameter(
            "status", str, enum=Workflow.Status.values, description="Default: all but archived."
        ),
        OpenApiParameter("q", str, description="Search in name and description."),
    ],
    tags=TAGS,
    operation_id="workflows_list",
)
@doc(
    methods=["POST"],
    request=WorkflowInput,
    responses={201: WorkflowDetailOutput, **ERRORS},
    tags=TAGS,
    operation_id="workflows_create",
    description="Create a workflow with its first draft version: the `graph` you send, or a starter "
    "graph (a manual trigger and an output). An invalid graph is a 400 whose field errors are keyed "
    "`graph.nodes.<node id>` (or `graph` for the whole graph).",
)
@api_view(["GET", "POST"])
def workflow_list(request: Request) -> Response:
    if request.method == "POST":
        ctx = writer(request)
        body = WorkflowInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        workflow = call(
            services.workflow_create,
            org=ctx.org,
            by=acting_user(request, ctx),
            name=data["name"],
            description=data.get("description", ""),
            graph=data.get("graph"),
        )
        return _detail(request, workflow.pk, status.HTTP_201_CREATED)
    ctx = org_for(request)
    queryset = workflows_for(ctx)
    wanted = request.query_params.get("status")
    if wanted:
        if wanted not in Workflow.Status.values:
            raise ValidationError({"status": [f"Use one of {', '.join(Workflow.Status.values)}."]})
        queryset = queryset.filter(status=wanted)
    else:
        queryset = queryset.exclude(status=Workflow.Status.ARCHIVED)
    q = (request.query_params.get("q") or "").strip()[:100]
    if q:
        queryset = queryset.filter(Q(name__icontains=q) | Q(description__icontains=q))
    return paginate(request, queryset.order_by("-updated_at", "-id"), WorkflowOutput)


@doc(methods=["GET"], responses={200: WorkflowDetailOutput, **ERRORS}, tags=TAGS)
@doc(
    methods=["PUT", "PATCH"],
    request=WorkflowInput(partial=True),
    responses={200: WorkflowDetailOutput, **ERRORS},
    tags=TAGS,
    description="Name and description change in place. A `graph` is validated and saved as a new "
    "draft version (publish it to make runs use it); if it is refused, nothing changes.",
)
@doc(
    methods=["DELETE"],
    responses={204: None, **ERRORS_409},
    tags=TAGS,
    description="Delete the workflow with its versions and runs. Refused (409) while a run is in progress.",
)
@api_view(["GET", "PUT", "PATCH", "DELETE"])
def workflow_detail(request: Request, workflow_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    workflow = workflow_or_404(ctx, workflow_id)
    if request.method == "GET":
        return Response(WorkflowDetailOutput(workflow).data)
    by = acting_user(request, ctx)
    if request.method == "DELETE":
        call(services.workflow_delete, workflow=workflow, by=by)
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = WorkflowInput(data=request.data, partial=True)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    with transaction.atomic():  # a refused graph leaves the name and description unchanged too
        if "name" in data or "description" in data:
            call(
                services.workflow_update,
                workflow=workflow,
                by=by,
                name=data.get("name"),
                description=data.get("description"),
            )
        if "graph" in data:
            call(
                services.version_create,
                workflow=workflow,
                by=by,
                graph=data["graph"],
                note=data.get("note") or "Edited",
            )
    return _detail(request, workflow.pk)


@doc(request=None, responses={200: WorkflowDetailOutput, **ERRORS}, tags=TAGS)
@api_view(["POST"])
def workflow_archive(request: Request, workflow_id: int) -> Response:
    """Archive the workflow: its triggers stop (schedules, webhook) and it cannot be run."""
    ctx = writer(request)
    workflow = workflow_or_404(ctx, workflow_id)
    call(services.workflow_archive, workflow=workflow, by=acting_user(request, ctx))
    return _detail(request, workflow.pk)


@doc(request=None, responses={200: WorkflowDetailOutput, **ERRORS}, tags=TAGS)
@api_view(["POST"])
def workflow_restore(request: Request, workflow_id: int) -> Response:
    """Bring an archived workflow back (active if it has a published version, else draft)."""
    ctx = writer(request)
    workflow = workflow_or_404(ctx, workflow_id)
    call(services.workflow_restore, workflow=workflow, by=acting_user(request, ctx))
    return _detail(request, workflow.pk)


# -------------------------------------------------------------- versions


@doc(responses={200: WorkflowVersionOutput(many=True), **ERRORS}, tags=TAGS)
@api_view(["GET"])
def version_list(request: Request, workflow_id: int) -> Response:
    """Every saved version, newest first."""
    workflow = workflow_or_404(org_for(request), workflow_id)
    queryset = workflow.versions.select_related("created_by", "workflow").order_by("-number")
    return paginate(request, queryset, WorkflowVersionOutput)


@doc(responses={200: WorkflowVersionOutput, **ERRORS}, tags=TAGS)
@api_view(["GET"])
def version_detail(request: Request, workflow_id: int, number: int) -> Response:
    workflow = workflow_or_404(org_for(request), workflow_id)
    return Response(WorkflowVersionOutput(version_or_404(workflow, number)).data)


@doc(
    request=WorkflowGraphInput,
    responses={200: WorkflowValidationOutput, **ERRORS},
    tags=TAGS,
    description="Check a graph without saving it (default: the latest version's graph). Always a 200: "
    '`valid` says whether it would save, `errors` has the messages by node id (and "graph").',
)
@api_view(["POST"])
def workflow_validate(request: Request, workflow_id: int) -> Response:
    workflow = workflow_or_404(org_for(request), workflow_id)
    body = WorkflowGraphInput(data=request.data)
    body.is_valid(raise_exception=True)
    graph = body.validated_data.get("graph")
    if graph is None:
        latest = workflow.latest_version()
        graph = latest.graph if latest else None
    try:
        validate_graph(graph, org=workflow.organization_id, workflow=workflow)
    except GraphError as exc:
        return Response(WorkflowValidationOutput({"valid": False, "errors": exc.errors}).data)
    return Response(WorkflowValidationOutput({"valid": True, "errors": {}}).data)


@doc(request=WorkflowPublishInput, responses={200: WorkflowDetailOutput, **ERRORS_409}, tags=TAGS)
@api_view(["POST"])
def workflow_publish(request: Request, workflow_id: int) -> Response:
    """Make a version (default: the latest) the one runs use; its triggers (schedule, webhook) go live."""
    ctx = writer(request)
    workflow = workflow_or_404(ctx, workflow_id)
    body = WorkflowPublishInput(data=request.data)
    body.is_valid(raise_exception=True)
    number = body.validated_data.get("version")
    version = version_or_404(workflow, number) if number else None
    call(services.workflow_publish, workflow=workflow, by=acting_user(request, ctx), version=version)
    return _detail(request, workflow.pk)


@doc(request=WorkflowRollbackInput, responses={200: WorkflowDetailOutput, **ERRORS_409}, tags=TAGS)
@api_view(["POST"])
def workflow_rollback(request: Request, workflow_id: int) -> Response:
    """Publish an earlier version again."""
    ctx = writer(request)
    workflow = workflow_or_404(ctx, workflow_id)
    body = WorkflowRollbackInput(data=request.data)
    body.is_valid(raise_exception=True)
    call(
        services.workflow_rollback,
        workflow=workflow,
        by=acting_user(request, ctx),
        number=body.validated_data["version"],
    )
    return _detail(request, workflow.pk)


# --------------------------------------------------------------- webhook


def _webhook(request: Request, workflow: Workflow, secret: str | None) -> Response:
    path = f"/hooks/workflows/{workflow.webhook_token}"
    data = {
        "path": path,
        "url": request.build_absolute_uri(path),
        "enabled": any(t.get("kind") == "webhook" for t in workflow.triggers or []),
        "has_secret": bool(workflow.webhook_secret),
        "secret": secret,
        "signature_header": SIGNATURE_HEADER,
        "signature_format": "sha256=<hex HMAC-SHA256 of the raw request body, keyed with the secret>",
    }
    return Response(WorkflowWebhookOutput(data).data)


WEBHOOK_DOC = (
    "The workflow's webhook trigger (admins and owners only). Send `POST <path>` with a JSON body and "
    f"the header `{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the raw body>`; the answer is 202 "
    '`{"run_id", "status"}` and the run goes on in the background. A bad or missing signature is a 401 '
    "and starts nothing. The body (at most 256 KB) is the run's input; JSON that is not an object comes "
    'in as `{"body": <value>}`. The secret exists once a version with a webhook trigger is published.'
)


@doc(responses={200: WorkflowWebhookOutput, **ERRORS}, tags=TAGS, description=WEBHOOK_DOC)
@api_view(["GET"])
def workflow_webhook(request: Request, workflow_id: int) -> Response:
    workflow = workflow_or_404(org_for(request, Role.ADMIN), workflow_id)
    return _webhook(request, workflow, services.webhook_secret(workflow))


@doc(
    request=None,
    responses={200: WorkflowWebhookOutput, **ERRORS},
    tags=TAGS,
    description="Replace the webhook's secret (admins and owners only); the old one stops working at once.",
)
@api_view(["POST"])
def workflow_webhook_rotate(request: Request, workflow_id: int) -> Response:
    ctx = org_for(request, Role.ADMIN)
    workflow = workflow_or_404(ctx, workflow_id)
    secret = call(services.webhook_rotate, workflow=workflow, by=acting_user(request, ctx))
    return _webhook(request, workflow, secret)
