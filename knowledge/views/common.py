"""Access helpers shared by the knowledge views. Every lookup starts from request.org; a miss is a 404."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.http import Http404
from django.template.response import TemplateResponse

from accounts.models import Role, role_at_least
from accounts.tenancy import get_for_org_or_404
from accounts.types import AuthedHttpRequest
from knowledge.api.common import with_counts
from knowledge.forms import ACCEPT, TextForm, UrlForm
from knowledge.models import Document, KnowledgeBase

PAGE_SIZE = 25
TABS = (
    ("documents", "Documents", "knowledge_detail"),
    ("settings", "Settings", "knowledge_settings"),
)


def can_write(request: AuthedHttpRequest) -> bool:
    return bool(request.org_role and role_at_least(request.org_role, Role.MEMBER))


def kb_or_404(request: AuthedHttpRequest, kb_id: int, *, counts: bool = False) -> KnowledgeBase:
    queryset = KnowledgeBase.objects.for_org(request.org)
    kb = (with_counts(queryset) if counts else queryset).filter(pk=kb_id).first()
    if kb is None:
        raise Http404("No such knowledge base.")
    return kb


def document_or_404(request: AuthedHttpRequest, kb: KnowledgeBase, doc_id: int) -> Document:
    return get_for_org_or_404(Document, request.org, pk=doc_id, knowledge_base=kb)


def documents_page(request: AuthedHttpRequest, kb: KnowledgeBase) -> tuple[Page, str]:
    status = request.GET.get("status", "")
    queryset = Document.objects.for_org(request.org).filter(knowledge_base=kb)
    if status in Document.Status.values:
        queryset = queryset.filter(status=status)
    else:
        status = ""
    page = Paginator(queryset.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return page, status


def kb_page(
    request: AuthedHttpRequest, kb: KnowledgeBase, tab: str, template: str, context: dict[str, Any]
) -> TemplateResponse:
    """One tab of a knowledge base's page: header with counts + tabs + the tab's own context."""
    base = {"kb": kb, "tab": tab, "tabs": TABS, "can_write": can_write(request)}
    base.update(context)
    return TemplateResponse(request, template, base)


def detail_context(
    request: AuthedHttpRequest,
    kb: KnowledgeBase,
    url_form: UrlForm | None = None,
    text_form: TextForm | None = None,
) -> dict[str, Any]:
    page, status = documents_page(request, kb)
    return {
        "page": page,
        "status": status,
        "statuses": Document.Status.choices,
        "url_form": url_form or UrlForm(),
        "text_form": text_form or TextForm(),
        "accept": ACCEPT,
    }
