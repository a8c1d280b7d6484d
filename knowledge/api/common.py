"""Shared plumbing for the knowledge API: loading through the org, counts, search hits as data."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.permissions import OrgContext
from agents.api.common import ERRORS
from config.api import ApiError, ErrorEnvelopeSerializer
from knowledge.models import Document, KnowledgeBase

TAGS = ["knowledge"]
UPLOAD_ERRORS = {
    **ERRORS,
    409: ErrorEnvelopeSerializer,
    413: ErrorEnvelopeSerializer,
    415: ErrorEnvelopeSerializer,
}


def with_counts(queryset: QuerySet[KnowledgeBase]) -> QuerySet[KnowledgeBase]:
    # One join (documents): the counts and the sum cannot multiply one another.
    return queryset.annotate(
        document_count=Count("documents"),
        ready_count=Count("documents", filter=Q(documents__status=Document.Status.READY)),
        failed_count=Count("documents", filter=Q(documents__status=Document.Status.FAILED)),
        chunk_count=Coalesce(Sum("documents__chunk_count"), 0),
    )


def kb_or_404(ctx: OrgContext, kb_id: int, *, counts: bool = False) -> KnowledgeBase:
    queryset = KnowledgeBase.objects.for_org(ctx.org)
    kb = (with_counts(queryset) if counts else queryset).filter(pk=kb_id).first()
    if kb is None:
        raise ApiError(404, "not_found", "No such knowledge base in this organization.")
    return kb


def document_or_404(kb: KnowledgeBase, doc_id: int) -> Document:
    document = Document.objects.for_org(kb.organization_id).filter(knowledge_base=kb, pk=doc_id).first()
    if document is None:
        raise ApiError(404, "not_found", "This knowledge base has no such document.")
    return document


def file_or_404(ctx: OrgContext, file_id: int) -> Document:
    document = (
        Document.objects.for_org(ctx.org)
        .filter(pk=file_id, source=Document.Source.FILE)
        .select_related("knowledge_base")
        .first()
    )
    if document is None:
        raise ApiError(404, "not_found", "No such file in this organization.")
    return document


def hit_data(hit: Any) -> dict[str, Any]:
    """A search hit (knowledge.search.SearchHit) as plain data for the output serializer."""
    heading = hit.heading_path or []
    ranks = hit.ranks or {}
    return {
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "document_title": hit.document_title,
        "knowledge_base_id": hit.knowledge_base_id,
        "page": hit.page,
        "heading_path": [str(h) for h in heading] if isinstance(heading, list | tuple) else [str(heading)],
        "text": hit.text,
        "score": float(hit.score),
        "ranks": {k: ranks.get(k) for k in ("vector", "keyword", "fused")},
    }
