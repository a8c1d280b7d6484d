"""The node catalog (`/api/v1/workflows/nodes`) and the templates gallery (`/api/v1/workflow-templates/`)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.common import ERRORS, acting_user, doc, org_for, paginate, writer
from config.api import ApiError
from workflows import services
from workflows.api.common import call, workflow_or_404
from workflows.graph import CATEGORIES, NODE_TYPES
from workflows.models import WorkflowTemplate
from workflows.serializers import (
    WorkflowDetailOutput,
    WorkflowNodeCatalogOutput,
    WorkflowTemplateDetailOutput,
    WorkflowTemplateOutput,
)

TEMPLATE_TAGS = ["workflow-templates"]


def node_catalog_data() -> dict[str, object]:
    return {
        "categories": [{"id": key, "label": label} for key, label in CATEGORIES.items()],
        "nodes": [
            {
                "type": spec.type,
                "label": spec.label,
                "category": spec.category,
                "description": spec.description,
                "ports": list(spec.ports),
                "dynamic_ports": spec.dynamic_ports,
                "required": list(spec.required),
                "defaults": spec.defaults,
                "icon": spec.icon,
            }
            for spec in NODE_TYPES.values()
        ],
    }


@doc(
    responses={200: WorkflowNodeCatalogOutput, **ERRORS},
    tags=["workflows"],
    description="The node types a graph may use, by palette category, with their output ports, required "
    "config keys and defaults. Every node but `approval` and `end` also has an `error` port.",
)
@api_view(["GET"])
def node_catalog(request: Request) -> Response:
    org_for(request)
    return Response(WorkflowNodeCatalogOutput(node_catalog_data()).data)


def _template_or_404(template_id: int) -> WorkflowTemplate:
    template = WorkflowTemplate.objects.filter(pk=template_id, is_published=True).first()
    if template is None:
        raise ApiError(404, "not_found", "No such workflow template.")
    return template


@doc(
    responses={200: WorkflowTemplateOutput(many=True), **ERRORS},
    parameters=[OpenApiParameter("category", str, enum=WorkflowTemplate.Category.values)],
    tags=TEMPLATE_TAGS,
)
@api_view(["GET"])
def template_list(request: Request) -> Response:
    """The templates gallery, by category and name."""
    org_for(request)
    queryset = WorkflowTemplate.objects.filter(is_published=True)
    category = request.query_params.get("category")
    if category:
        if category not in WorkflowTemplate.Category.values:
            raise ValidationError(
                {"category": [f"Use one of {', '.join(WorkflowTemplate.Category.values)}."]}
            )
        queryset = queryset.filter(category=category)
    return paginate(request, queryset.order_by("category", "name", "id"), WorkflowTemplateOutput)


@doc(responses={200: WorkflowTemplateDetailOutput, **ERRORS}, tags=TEMPLATE_TAGS)
@api_view(["GET"])
def template_detail(request: Request, template_id: int) -> Response:
    """One template, with its graph (for a preview)."""
    org_for(request)
    return Response(WorkflowTemplateDetailOutput(_template_or_404(template_id)).data)


@doc(request=None, responses={201: WorkflowDetailOutput, **ERRORS}, tags=TEMPLATE_TAGS)
@api_view(["POST"])
def template_install(request: Request, template_id: int) -> Response:
    """Copy the template into your organization as a new draft workflow (its agents are created too)."""
    ctx = writer(request)
    template = _template_or_404(template_id)
    workflow = call(services.template_install, template=template, org=ctx.org, by=acting_user(request, ctx))
    return Response(
        WorkflowDetailOutput(workflow_or_404(ctx, workflow.pk)).data, status=status.HTTP_201_CREATED
    )
