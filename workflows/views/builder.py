"""The builder: a Drawflow canvas (static/js/workflow-builder.js) over the graph JSON, a config panel
per node served as htmx forms, and JSON endpoints for save, validate, publish and test run.

The canvas owns the unsaved graph; the server owns the rules. Node forms turn fields into config
(comma lists, mappings, numbers) and answer with the node's JSON in an `HX-Trigger` event; save,
publish and test run validate the whole graph and answer with errors per node for the canvas to mark.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from billing.views.common import can_manage
from billing.views.prompts import is_billing_refusal
from workflows import services
from workflows.forms import NODE_FORMS, NodeForm, parse_run_input
from workflows.graph import CATEGORIES, NODE_TYPES, GraphError, validate_graph
from workflows.models import Workflow, WorkflowRun, WorkflowVersion
from workflows.views.common import can_write, workflow_or_404

MAX_BODY = 1024 * 1024
FIELD_IDS = "wfn-%s"  # the panel's field ids, apart from the page's own


def node_catalog() -> list[dict[str, Any]]:
    """What the palette shows and the canvas needs to draw a node: label, icon, inputs and outputs."""
    return [
        {
            "type": t.type,
            "label": t.label,
            "category": t.category,
            "description": t.description,
            "icon": t.icon,
            "ports": list(t.ports),
            "dynamic_ports": t.dynamic_ports,
            "error_port": t.type not in ("approval", "end"),
            "inputs": 0 if t.type == "trigger" else 1,
            "defaults": t.defaults,
        }
        for t in NODE_TYPES.values()
    ]


def palette() -> list[dict[str, Any]]:
    catalog = node_catalog()
    return [
        {"id": cid, "label": label, "types": [t for t in catalog if t["category"] == cid]}
        for cid, label in CATEGORIES.items()
    ]


@org_role_required()
def builder(request: AuthedHttpRequest, workflow_id: int) -> TemplateResponse:
    workflow = workflow_or_404(request, workflow_id)
    version = workflow.latest_version()
    graph = version.graph if version else {"nodes": [], "edges": []}
    writable = can_write(request)
    urls = {
        "save": "workflows_builder_save",
        "validate": "workflows_builder_validate",
        "publish": "workflows_builder_publish",
        "testRun": "workflows_builder_test_run",
        "panel": "workflows_builder_node",
    }
    config = {
        "workflowId": workflow.pk,
        "readOnly": not writable,
        "catalog": node_catalog(),
        "graph": graph,
        "urls": {key: reverse(name, kwargs={"workflow_id": workflow.pk}) for key, name in urls.items()},
    }
    context = {
        "workflow": workflow,
        "version": version,
        "versions_count": workflow.versions.count(),
        "palette": palette(),
        "builder_config": config,
        "can_write": writable,
        "recent_runs": workflow.runs.order_by("-created_at", "-pk")[:5],
    }
    return TemplateResponse(request, "workflows/builder.html", context)


# ------------------------------------------------------------ JSON endpoints


def _payload(request: AuthedHttpRequest) -> dict[str, Any]:
    """The canvas posts JSON; a plain form may post `graph` as a JSON string."""
    if len(request.body) > MAX_BODY:
        raise ServiceError("The graph is too large.", code="too_large", status=413)
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except json.JSONDecodeError as exc:
            raise ServiceError(f"Not valid JSON: {exc.msg}.", code="invalid_json")
        if not isinstance(data, dict):
            raise ServiceError("Send a JSON object with a graph.", code="invalid_json")
        return data
    try:
        graph = json.loads(request.POST.get("graph") or "null")
    except json.JSONDecodeError as exc:
        raise ServiceError(f"The graph is not valid JSON: {exc.msg}.", code="invalid_json")
    return {"graph": graph, "input": request.POST.get("input", ""), "note": request.POST.get("note", "")}


def _graph_errors(exc: GraphError) -> JsonResponse:
    count = sum(len(v) for v in exc.errors.values())
    return JsonResponse(
        {
            "ok": False,
            "detail": f"Not saved: {count} problem{'s' if count != 1 else ''} to fix (marked in red).",
            "errors": exc.errors,
        },
        status=400,
    )


def _refused(request: AuthedHttpRequest, exc: ServiceError) -> JsonResponse:
    body: dict[str, Any] = {"ok": False, "detail": str(exc), "code": exc.code}
    if is_billing_refusal(exc):
        # The same way out the pages offer (add credits, upgrade, see usage), shown beside the message.
        body["action_html"] = render_to_string(
            "billing/_prompt_action.html",
            {"code": exc.code, "can_manage": can_manage(request)},
            request=request,
        )
    return JsonResponse(body, status=exc.status)


def _save_if_changed(
    workflow: Workflow, request: AuthedHttpRequest, data: dict[str, Any]
) -> tuple[WorkflowVersion, bool]:
    """A new draft version unless the graph is the latest one already."""
    graph = data.get("graph")
    latest = workflow.latest_version()
    if latest is not None and isinstance(graph, dict) and _same(latest.graph, graph):
        validate_graph(graph, org=workflow.organization_id, workflow=workflow)
        return latest, False
    note = str(data.get("note") or "Saved in the builder")[:200]
    return services.version_create(workflow=workflow, by=request.user, graph=graph, note=note), True


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(g: dict[str, Any]) -> str:
        return json.dumps({"nodes": g.get("nodes", []), "edges": g.get("edges", [])}, sort_keys=True)

    return norm(a) == norm(b)


def _writer_post(request: AuthedHttpRequest, workflow_id: int) -> Workflow:
    workflow = workflow_or_404(request, workflow_id)
    if not can_write(request):
        raise PermissionDenied("Viewers cannot change workflows.")
    return workflow


@org_role_required()
@require_POST
def save(request: AuthedHttpRequest, workflow_id: int) -> JsonResponse:
    workflow = _writer_post(request, workflow_id)
    try:
        version, created = _save_if_changed(workflow, request, _payload(request))
    except GraphError as exc:
        return _graph_errors(exc)
    except ServiceError as exc:
        return _refused(request, exc)
    message = (
        f"Saved as version {version.number} (draft)."
        if created
        else f"No changes since version {version.number}."
    )
    return JsonResponse({"ok": True, "version": version.number, "created": created, "detail": message})


@org_role_required()
@require_POST
def validate(request: AuthedHttpRequest, workflow_id: int) -> JsonResponse:
    workflow = _writer_post(request, workflow_id)
    try:
        validate_graph(_payload(request).get("graph"), org=workflow.organization_id, workflow=workflow)
    except GraphError as exc:
        return _graph_errors(exc)
    except ServiceError as exc:
        return _refused(request, exc)
    return JsonResponse({"ok": True, "detail": "The workflow is valid."})


@org_role_required()
@require_POST
def publish(request: AuthedHttpRequest, workflow_id: int) -> JsonResponse:
    workflow = _writer_post(request, workflow_id)
    try:
        version, _created = _save_if_changed(workflow, request, _payload(request))
        services.workflow_publish(workflow=workflow, by=request.user, version=version)
    except GraphError as exc:
        return _graph_errors(exc)
    except ServiceError as exc:
        return _refused(request, exc)
    return JsonResponse(
        {
            "ok": True,
            "version": version.number,
            "status": workflow.status,
            "detail": f"Version {version.number} is live: triggers and the run API use it now.",
        }
    )


@org_role_required()
@require_POST
def test_run(request: AuthedHttpRequest, workflow_id: int) -> JsonResponse:
    """Save the canvas if it changed, then run that latest version as a test run."""
    workflow = _writer_post(request, workflow_id)
    try:
        data = _payload(request)
        run_input = parse_run_input(str(data.get("input") or ""))
        _save_if_changed(workflow, request, data)
        run = services.run_start(
            workflow=workflow,
            by=request.user,
            input=run_input,
            source=WorkflowRun.Source.TEST,
            version=workflow.latest_version(),
        )
    except ValidationError as exc:
        return JsonResponse({"ok": False, "detail": exc.messages[0], "code": "invalid_input"}, status=400)
    except GraphError as exc:
        return _graph_errors(exc)
    except ServiceError as exc:
        return _refused(request, exc)
    return JsonResponse(
        {
            "ok": True,
            "run_id": run.pk,
            "status": run.status,
            "run_url": reverse("workflows_run_detail", kwargs={"run_id": run.pk}),
            "ws_url": f"/ws/workflow-runs/{run.pk}/?format=json",
            "detail": f"Test run #{run.pk} started.",
        },
        status=201,
    )


# ------------------------------------------------------------ node panel


def _panel(
    request: AuthedHttpRequest,
    workflow: Workflow,
    node_type: str,
    form: NodeForm,
    *,
    original_id: str,
    saved: bool = False,
) -> TemplateResponse:
    config_names = [name for name, _key in form.config_keys]
    return TemplateResponse(
        request,
        "workflows/_node_panel.html",
        {
            "workflow": workflow,
            "spec": NODE_TYPES[node_type],
            "node_type": node_type,
            "form": form,
            "identity_fields": [form["node_id"], form["name"]],
            "config_fields": [form[name] for name in config_names],
            "reliability_fields": [
                form["retry_max_attempts"],
                form["retry_backoff_seconds"],
                form["node_timeout_seconds"],
            ],
            "can_write": can_write(request),
            "saved": saved,
            "original_id": original_id,
            "other_ids": ",".join(form.other_ids),
            "webhook_url": (
                request.build_absolute_uri(
                    reverse("workflow-webhook", kwargs={"token": workflow.webhook_token})
                )
                if node_type == "trigger" and can_write(request)
                else ""
            ),
        },
    )


def _other_ids(request: AuthedHttpRequest) -> tuple[str, ...]:
    return tuple(i for i in request.POST.get("other_ids", "").split(",") if i)


@org_role_required()
@require_POST
def node_panel(request: AuthedHttpRequest, workflow_id: int) -> HttpResponse:
    """The config form of the node the canvas selected; the canvas posts the node's current JSON."""
    workflow = workflow_or_404(request, workflow_id)
    try:
        node = json.loads(request.POST.get("node") or "null")
    except json.JSONDecodeError:
        node = None
    if not isinstance(node, dict) or node.get("type") not in NODE_FORMS:
        return HttpResponse("Unknown node.", status=400)
    form_class = NODE_FORMS[node["type"]]
    form = form_class(
        initial=form_class.initial_for(node),
        org=request.org,
        workflow_id=workflow.pk,
        other_ids=_other_ids(request),
        read_only=not can_write(request),
        auto_id=FIELD_IDS,
    )
    return _panel(request, workflow, node["type"], form, original_id=str(node.get("id") or ""))


@org_role_required()
@require_POST
def node_apply(request: AuthedHttpRequest, workflow_id: int) -> HttpResponse:
    """Check the panel's fields; when they are good, hand the node's JSON back to the canvas."""
    workflow = _writer_post(request, workflow_id)
    node_type = request.POST.get("node_type", "")
    if node_type not in NODE_FORMS:
        return HttpResponse("Unknown node type.", status=400)
    form = NODE_FORMS[node_type](
        request.POST,
        org=request.org,
        workflow_id=workflow.pk,
        other_ids=_other_ids(request),
        auto_id=FIELD_IDS,
    )
    original_id = request.POST.get("original_id", "")
    if not form.is_valid():
        return _panel(request, workflow, node_type, form, original_id=original_id)
    node = {"type": node_type, **form.node()}
    response = _panel(request, workflow, node_type, form, original_id=node["id"], saved=True)
    event = {"original_id": original_id, "node": node}
    response["HX-Trigger"] = json.dumps({"wf-node-saved": event})
    return response
