"""A knowledge base's documents: upload (several files, one request each from the page's uploader),
add a URL, paste text, the list, one row (refreshed until it settles), retry, delete, chunk preview."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from accounts.decorators import org_role_required
from accounts.models import Role
from accounts.services import ServiceError
from accounts.types import AuthedHttpRequest
from knowledge import ingest
from knowledge.forms import TextForm, UrlForm
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.views.common import can_write, detail_context, document_or_404, kb_or_404, kb_page

CHUNKS_PER_PAGE = 20


def _changed(response: HttpResponse) -> HttpResponse:
    """The document list listens for this event and reloads itself."""
    response["HX-Trigger"] = "documents-changed"
    return response


def _is_xhr(request: AuthedHttpRequest) -> bool:
    # The page's uploader posts each file with XMLHttpRequest, for its upload progress bar.
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


@org_role_required(Role.MEMBER)
@require_POST
def upload(request: AuthedHttpRequest, kb_id: int) -> HttpResponse:
    """Files from the form field `file` (one per request from the uploader, several from a plain form).
    The uploader gets JSON: 201 with the documents, or the refusal's status (413, 415, 409) with the
    reason; nothing is stored then. A plain form goes back to the page with messages."""
    kb = kb_or_404(request, kb_id)
    files = request.FILES.getlist("file")
    if not files:
        if _is_xhr(request):
            return JsonResponse({"error": "Choose a file to upload."}, status=400)
        messages.error(request, "Choose a file to upload.")
        return redirect("knowledge_detail", kb_id=kb.pk)
    added: list[Document] = []
    refused: list[tuple[str, ServiceError]] = []
    for upload_file in files:
        try:
            added.append(
                ingest.document_add_file(
                    kb=kb, by=request.user, filename=upload_file.name or "file", data=upload_file.read()
                )
            )
        except ServiceError as exc:
            refused.append((upload_file.name or "file", exc))
    if _is_xhr(request):
        if refused and not added:
            return JsonResponse({"error": str(refused[0][1])}, status=refused[0][1].status)
        data = [{"id": d.pk, "title": d.title, "status": d.status} for d in added]
        return JsonResponse({"documents": data, "refused": [f"{n}: {e}" for n, e in refused]}, status=201)
    for name, refusal in refused:
        messages.error(request, f"{name}: {refusal}")
    if added:
        messages.success(
            request, f"Uploaded {len(added)} file{'s' if len(added) != 1 else ''}; processing now."
        )
    return redirect("knowledge_detail", kb_id=kb.pk)


def _add_response(
    request: AuthedHttpRequest, kb: KnowledgeBase, partial: str, form: UrlForm | TextForm, ok: str | None
) -> HttpResponse:
    if request.htmx:
        response = TemplateResponse(
            request, f"knowledge/detail.html#{partial}", {"kb": kb, f"{partial}": form, "added": ok}
        )
        return _changed(response) if ok else response
    if ok:
        messages.success(request, ok)
        return redirect("knowledge_detail", kb_id=kb.pk)
    context = (
        detail_context(request, kb, url_form=form)
        if isinstance(form, UrlForm)
        else detail_context(request, kb, text_form=form)
    )
    return kb_page(request, kb, "documents", "knowledge/detail.html", context)


@org_role_required(Role.MEMBER)
@require_POST
def add_url(request: AuthedHttpRequest, kb_id: int) -> HttpResponse:
    kb = kb_or_404(request, kb_id, counts=True)
    form = UrlForm(request.POST)
    if form.is_valid():
        try:
            ingest.document_add_url(kb=kb, by=request.user, url=form.cleaned_data["url"])
        except ServiceError as exc:
            form.add_error("url", str(exc))
        else:
            return _add_response(request, kb, "url_form", UrlForm(), "Added the URL; fetching it now.")
    return _add_response(request, kb, "url_form", form, None)


@org_role_required(Role.MEMBER)
@require_POST
def add_text(request: AuthedHttpRequest, kb_id: int) -> HttpResponse:
    kb = kb_or_404(request, kb_id, counts=True)
    form = TextForm(request.POST)
    if form.is_valid():
        try:
            ingest.document_add_text(
                kb=kb, by=request.user, title=form.cleaned_data["title"], text=form.cleaned_data["text"]
            )
        except ServiceError as exc:
            form.add_error("text" if exc.status in (409, 413) else None, str(exc))
        else:
            return _add_response(request, kb, "text_form", TextForm(), "Added the text; indexing it now.")
    return _add_response(request, kb, "text_form", form, None)


@org_role_required()
def documents(request: AuthedHttpRequest, kb_id: int) -> TemplateResponse:
    """The list alone (filters, pages, reloads after an addition); the page itself without htmx."""
    kb = kb_or_404(request, kb_id, counts=True)
    template = "knowledge/detail.html#documents" if request.htmx else "knowledge/detail.html"
    return kb_page(request, kb, "documents", template, detail_context(request, kb))


@org_role_required()
def stats(request: AuthedHttpRequest, kb_id: int) -> TemplateResponse:
    """The counts in the page header, redrawn when documents are added or settle."""
    kb = kb_or_404(request, kb_id, counts=True)
    return TemplateResponse(request, "knowledge/kb_base.html#stats", {"kb": kb})


@org_role_required()
def document_row(request: AuthedHttpRequest, kb_id: int, doc_id: int) -> TemplateResponse:
    """One row, as it is now. Rows still in progress refresh themselves with it, in case a websocket
    notice was missed (the socket only notifies; the row is the record)."""
    kb = kb_or_404(request, kb_id)
    document = document_or_404(request, kb, doc_id)
    return TemplateResponse(
        request,
        "knowledge/_document_row.html",
        {"document": document, "kb": kb, "can_write": can_write(request)},
    )


@org_role_required()
def document_detail(request: AuthedHttpRequest, kb_id: int, doc_id: int) -> TemplateResponse:
    """The chunk preview: the document's chunks in order, with their page and heading path."""
    kb = kb_or_404(request, kb_id, counts=True)
    document = document_or_404(request, kb, doc_id)
    chunks = Chunk.objects.for_org(request.org).filter(document=document).order_by("ordinal")
    page = Paginator(chunks, CHUNKS_PER_PAGE).get_page(request.GET.get("page"))
    template = "knowledge/document.html#chunks" if request.htmx else "knowledge/document.html"
    return kb_page(request, kb, "documents", template, {"document": document, "chunks": page})


@org_role_required(Role.MEMBER)
@require_POST
def document_retry(request: AuthedHttpRequest, kb_id: int, doc_id: int) -> HttpResponse:
    kb = kb_or_404(request, kb_id)
    document = document_or_404(request, kb, doc_id)
    try:
        document = ingest.document_retry(document=document)
    except ServiceError as exc:
        if not request.htmx:
            messages.error(request, str(exc))
    else:
        if not request.htmx:
            messages.success(request, f"Retrying “{document.title}”.")
    if request.htmx:
        document.refresh_from_db()
        return TemplateResponse(
            request, "knowledge/_document_row.html", {"document": document, "kb": kb, "can_write": True}
        )
    return redirect("knowledge_detail", kb_id=kb.pk)


@org_role_required(Role.MEMBER)
@require_POST
def document_delete(request: AuthedHttpRequest, kb_id: int, doc_id: int) -> HttpResponse:
    kb = kb_or_404(request, kb_id)
    document = document_or_404(request, kb, doc_id)
    title = document.title
    ingest.document_delete(document=document)
    if request.htmx:
        return _changed(HttpResponse(""))
    messages.success(request, f"Deleted “{title}”.")
    return redirect("knowledge_detail", kb_id=kb.pk)
