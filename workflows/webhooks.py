"""The webhook trigger: `POST /hooks/workflows/<token>`, signed with HMAC-SHA256.

A plain Django view, not DRF: there is no user or session, only the token in the path and the
signature over the raw body. It is on the hot path of "webhook → run" (hundreds a second), so it
loads the workflow in one query, checks, hands the run to the engine and answers 202 at once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db.models import OuterRef
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.services import ServiceError
from billing import caps
from config import prepared
from config.prepared import Prepared
from workflows import services
from workflows.models import StepRun, Workflow, WorkflowRun

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-AgentOS-Signature"
MAX_BODY_BYTES = 256 * 1024
MAX_TOKEN_LENGTH = 48


def _by_token(token: str) -> Any:
    # What a run's start reads besides comes with the workflow: whether it has a cost cap, and the
    # keys of the run and its trigger step (a refused call leaves a gap in the sequences, no more).
    return (
        Workflow.objects.select_related("published_version")
        .filter(webhook_token=token)
        .annotate(
            cost_capped=caps.has_cap(workflow_id=OuterRef("pk")),
            run_key=prepared.next_id(WorkflowRun),
            step_key=prepared.next_id(StepRun),
        )
    )


# The lookup every webhook call makes: compiled to SQL once.
_BY_TOKEN = Prepared(_by_token, str)


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "error_code": code, "field_errors": {}}, status=status)


def _webhook_node(workflow: Workflow) -> str | None:
    """The id of the published version's webhook trigger node, if it has one."""
    version = workflow.published_version
    nodes = version.graph.get("nodes") if version is not None and isinstance(version.graph, dict) else None
    for node in nodes or []:
        if node.get("type") == "trigger" and (node.get("config") or {}).get("kind") == "webhook":
            return str(node["id"])
    return None


def _parse(body: bytes) -> tuple[bool, Any]:
    if not body.strip():
        return True, {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False, None
    return True, value if isinstance(value, dict) else {"body": value}


@csrf_exempt  # signed by the sender instead; no cookies are involved
def workflow_webhook(request: HttpRequest, token: str) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Send the webhook with POST.")
        response["Allow"] = "POST"
        return response
    workflow = None
    if len(token) <= MAX_TOKEN_LENGTH:
        workflow = _BY_TOKEN.first(token)
    if workflow is None:
        return _error(404, "not_found", "No workflow webhook at this address.")
    if workflow.status != Workflow.Status.ACTIVE or workflow.published_version is None:
        return _error(409, "not_active", "This workflow is not active; publish (or restore) it first.")
    node_id = _webhook_node(workflow)
    if node_id is None:
        return _error(
            404, "no_webhook_trigger", "The published version of this workflow has no webhook trigger."
        )
    # Refuse a big body before reading it, then check the size actually read (no Content-Length, chunked).
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return _error(
            413, "request_too_large", f"The body is too large ({MAX_BODY_BYTES // 1024} KB at most)."
        )
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return _error(
            413, "request_too_large", f"The body is too large ({MAX_BODY_BYTES // 1024} KB at most)."
        )
    if not services.webhook_verify(workflow, body, request.headers.get(SIGNATURE_HEADER)):
        return _error(
            401,
            "bad_signature",
            f"Missing or wrong {SIGNATURE_HEADER} header (sha256=<hex HMAC of the body>).",
        )
    ok, data = _parse(body)
    if not ok:
        return _error(400, "invalid_json", "The body is not valid JSON.")
    try:
        run = services.run_start(
            workflow=workflow,
            by=None,
            input=data,
            source=WorkflowRun.Source.WEBHOOK,
            trigger_node=node_id,
            cost_capped=workflow.cost_capped,  # type: ignore[attr-defined]
            keys=(workflow.run_key, workflow.step_key),  # type: ignore[attr-defined]
        )
    except ServiceError as exc:
        return _error(exc.status, exc.code, str(exc))
    return JsonResponse({"run_id": run.pk, "status": run.status}, status=202)
