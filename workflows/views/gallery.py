"""The templates gallery: filter by category, preview a template's steps, install it into the org."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from workflows import services
from workflows.graph import GraphError
from workflows.models import WorkflowTemplate
from workflows.views.builder import node_catalog
from workflows.views.common import can_write
from workflows.views.runs import node_info


def _published() -> Any:
    return WorkflowTemplate.objects.filter(is_published=True)


def steps_preview(graph: dict[str, Any]) -> list[dict[str, str]]:
    info = node_info(graph)
    return [{"id": n.get("id", ""), **info.get(n.get("id", ""), {})} for n in graph.get("nodes", [])]


@org_role_required()
def gallery(request: AuthedHttpRequest) -> TemplateResponse:
    category = request.GET.get("category", "")
    templates = _published()
    if category in WorkflowTemplate.Category.values:
        templates = templates.filter(category=category)
    else:
        category = ""
    items = [{"template": t, "steps": steps_preview(t.graph)} for t in templates.order_by("category", "name")]
    return TemplateResponse(
        request,
        "workflows/templates.html",
        {
            "items": items,
            "category": category,
            "categories": WorkflowTemplate.Category.choices,
            "can_write": can_write(request),
        },
    )


@org_role_required()
def template_detail(request: AuthedHttpRequest, template_id: int) -> TemplateResponse:
    template = _published().filter(pk=template_id).first()
    if template is None:
        raise Http404("No such template.")
    config = {"readOnly": True, "catalog": node_catalog(), "graph": template.graph, "urls": {}}
    return TemplateResponse(
        request,
        "workflows/template_detail.html",
        {
            "template": template,
            "steps": steps_preview(template.graph),
            "builder_config": config,
            "can_write": can_write(request),
        },
    )


@org_role_required(Role.MEMBER)
@require_POST
def template_install(request: AuthedHttpRequest, template_id: int) -> HttpResponse:
    template = _published().filter(pk=template_id).first()
    if template is None:
        raise Http404("No such template.")
    try:
        workflow = services.template_install(template=template, org=request.org, by=request.user)
    except GraphError as exc:
        messages.error(request, f"This template does not fit your organization yet: {exc}")
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Installed {workflow.name}. Review the steps, then test-run it.")
        return redirect("workflows_builder", workflow_id=workflow.pk)
    return redirect("workflows_template_detail", template_id=template.pk)
