"""The knowledge bases list (with the create form), a base's page, its settings, re-index and delete."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from knowledge import ingest, services
from knowledge.api.common import with_counts
from knowledge.forms import KnowledgeBaseForm
from knowledge.models import KnowledgeBase
from knowledge.views.common import can_write, detail_context, kb_or_404, kb_page


def _create_form(request: AuthedHttpRequest, data: object = None) -> KnowledgeBaseForm:
    defaults = services.default_embedding(org=request.org)
    initial = {
        **defaults,
        "chunk_strategy": KnowledgeBase.ChunkStrategy.RECURSIVE,
        "chunk_size": 400,
        "chunk_overlap": 50,
    }
    return KnowledgeBaseForm(data, initial=initial, auto_id="new-kb-%s")  # type: ignore[arg-type]


@org_role_required()
def index(request: AuthedHttpRequest) -> HttpResponse:
    form = _create_form(request, request.POST or None)
    if request.method == "POST":
        if not can_write(request):
            raise PermissionDenied("Viewers cannot create knowledge bases.")
        if form.is_valid():
            data = dict(form.cleaned_data)
            try:
                kb = services.knowledge_base_create(
                    org=request.org, by=request.user, name=data.pop("name"), **data
                )
            except services.KnowledgeBaseInvalid as exc:
                form.refused(exc)
            else:
                messages.success(request, f"“{kb.name}” is ready for documents.")
                return redirect("knowledge_detail", kb_id=kb.pk)
    kbs = with_counts(KnowledgeBase.objects.for_org(request.org)).order_by("name", "pk")
    return TemplateResponse(
        request,
        "knowledge/index.html",
        {"kbs": kbs, "form": form, "can_write": can_write(request), "show_form": form.is_bound},
    )


@org_role_required()
def detail(request: AuthedHttpRequest, kb_id: int) -> TemplateResponse:
    kb = kb_or_404(request, kb_id, counts=True)
    return kb_page(request, kb, "documents", "knowledge/detail.html", detail_context(request, kb))


@org_role_required()
def settings_page(request: AuthedHttpRequest, kb_id: int) -> HttpResponse:
    kb = kb_or_404(request, kb_id, counts=True)
    form = KnowledgeBaseForm(request.POST or None, initial=KnowledgeBaseForm.initial_for(kb))
    if request.method == "POST":
        if not can_write(request):
            raise PermissionDenied("Viewers cannot change knowledge bases.")
        if form.is_valid():
            before = {f: getattr(kb, f) for f in services.REINDEX_FIELDS}
            try:
                services.knowledge_base_update(kb=kb, by=request.user, **form.cleaned_data)
            except services.KnowledgeBaseInvalid as exc:
                form.refused(exc)
            else:
                reindexed = any(getattr(kb, f) != v for f, v in before.items()) and kb.documents.exists()
                note = " Every document is being re-indexed with the new settings." if reindexed else ""
                messages.success(request, "Settings saved." + note)
                return redirect("knowledge_settings", kb_id=kb.pk)
    return kb_page(request, kb, "settings", "knowledge/settings.html", {"form": form})


@org_role_required(Role.MEMBER)
@require_POST
def reindex(request: AuthedHttpRequest, kb_id: int) -> HttpResponse:
    kb = kb_or_404(request, kb_id)
    try:
        count = ingest.knowledge_base_reindex(kb=kb)
    except ServiceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Re-indexing {count} document{'' if count == 1 else 's'}.")
    return redirect("knowledge_detail", kb_id=kb.pk)


@org_role_required(Role.MEMBER)
@require_POST
def delete(request: AuthedHttpRequest, kb_id: int) -> HttpResponse:
    kb = kb_or_404(request, kb_id)
    name = kb.name
    services.knowledge_base_delete(kb=kb)
    messages.success(request, f"“{name}” and its documents are deleted.")
    return redirect("knowledge_index")
