"""/api/v1/knowledge-bases/: the bases, their documents, re-index; /api/v1/knowledge/search."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.services import ServiceError
from agents.api.common import ERRORS, acting_user, call, doc, org_for, paginate, writer
from config.api import ApiError, ErrorEnvelopeSerializer
from knowledge import ingest, services
from knowledge.api.common import TAGS, UPLOAD_ERRORS, document_or_404, hit_data, kb_or_404, with_counts
from knowledge.embeddings import EmbeddingError
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.search import SearchError, search
from knowledge.serializers import (
    ChunkOutput,
    DocumentDetailOutput,
    DocumentInput,
    DocumentOutput,
    KnowledgeBaseInput,
    KnowledgeBaseOutput,
    SearchInput,
    SearchOutput,
)

CHUNK_PREVIEW = 50


def _kb_write(fn: object, **kwargs: object) -> KnowledgeBase:
    """Run a knowledge base service; a refused setting becomes an error on its field."""
    try:
        return fn(**kwargs)  # type: ignore[operator, no-any-return]
    except services.KnowledgeBaseInvalid as exc:
        raise ValidationError({exc.field: [str(exc)]})
    except ServiceError as exc:
        raise ApiError(exc.status, exc.code, str(exc))


def _kb_response(ctx_org_id: int, kb_id: int, code: int = status.HTTP_200_OK) -> Response:
    kb = with_counts(KnowledgeBase.objects.for_org(ctx_org_id)).get(pk=kb_id)
    return Response(KnowledgeBaseOutput(kb).data, status=code)


@doc(methods=["GET"], responses={200: KnowledgeBaseOutput(many=True), **ERRORS}, tags=TAGS)
@doc(methods=["POST"], request=KnowledgeBaseInput, responses={201: KnowledgeBaseOutput, **ERRORS}, tags=TAGS)
@api_view(["GET", "POST"])
def knowledge_base_list(request: Request) -> Response:
    if request.method == "GET":
        ctx = org_for(request)
        queryset = with_counts(KnowledgeBase.objects.for_org(ctx.org)).order_by("name", "pk")
        return paginate(request, queryset, KnowledgeBaseOutput)
    ctx = writer(request)
    body = KnowledgeBaseInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = dict(body.validated_data)
    kb = _kb_write(
        services.knowledge_base_create,
        org=ctx.org,
        by=acting_user(request, ctx),
        name=data.pop("name"),
        **data,
    )
    return _kb_response(ctx.org.pk, kb.pk, status.HTTP_201_CREATED)


@doc(methods=["GET"], responses={200: KnowledgeBaseOutput, **ERRORS}, tags=TAGS)
@doc(
    methods=["PUT", "PATCH"],
    request=KnowledgeBaseInput(partial=True),
    responses={200: KnowledgeBaseOutput, **ERRORS},
    tags=TAGS,
    description="Change settings. A change of chunking or embedding settings re-indexes every document.",
)
@doc(
    methods=["DELETE"],
    responses={204: None, **ERRORS},
    tags=TAGS,
    description="Delete the knowledge base, its documents, their stored files and chunks.",
)
@api_view(["GET", "PUT", "PATCH", "DELETE"])
def knowledge_base_detail(request: Request, kb_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    kb = kb_or_404(ctx, kb_id, counts=request.method == "GET")
    if request.method == "GET":
        return Response(KnowledgeBaseOutput(kb).data)
    if request.method == "DELETE":
        services.knowledge_base_delete(kb=kb)
        return Response(status=status.HTTP_204_NO_CONTENT)
    body = KnowledgeBaseInput(data=request.data, partial=True)
    body.is_valid(raise_exception=True)
    _kb_write(services.knowledge_base_update, kb=kb, by=acting_user(request, ctx), **body.validated_data)
    return _kb_response(ctx.org.pk, kb.pk)


@doc(request=None, responses={202: KnowledgeBaseOutput, **ERRORS}, tags=TAGS)
@api_view(["POST"])
def knowledge_base_reindex(request: Request, kb_id: int) -> Response:
    """Chunk and embed every document again with the current settings (in the background)."""
    ctx = writer(request)
    kb = kb_or_404(ctx, kb_id)
    call(ingest.knowledge_base_reindex, kb=kb)
    return _kb_response(ctx.org.pk, kb.pk, status.HTTP_202_ACCEPTED)


# ------------------------------------------------------------ documents


@doc(
    methods=["GET"],
    responses={200: DocumentOutput(many=True), **ERRORS},
    parameters=[OpenApiParameter("status", str, enum=Document.Status.values)],
    tags=TAGS,
)
@doc(
    methods=["POST"],
    request={"multipart/form-data": DocumentInput, "application/json": DocumentInput},
    responses={202: DocumentOutput, **UPLOAD_ERRORS},
    tags=TAGS,
    description="Add a document: a multipart `file`, a `url` (fetched by the server), or a `title` with "
    "`text`. Ingestion runs in the background; poll the document or watch its `status`. "
    "An unsupported or mismatched type is a 415, a file over the limit a 413, the same content twice "
    "a 409; nothing is stored then.",
)
@api_view(["GET", "POST"])
@parser_classes([JSONParser, MultiPartParser, FormParser])
def document_list(request: Request, kb_id: int) -> Response:
    if request.method == "GET":
        ctx = org_for(request)
        kb = kb_or_404(ctx, kb_id)
        queryset = Document.objects.for_org(ctx.org).filter(knowledge_base=kb)
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in Document.Status.values:
                raise ValidationError({"status": [f"Use one of {', '.join(Document.Status.values)}."]})
            queryset = queryset.filter(status=wanted)
        return paginate(request, queryset.order_by("-created_at", "-pk"), DocumentOutput)
    ctx = writer(request)
    kb = kb_or_404(ctx, kb_id)
    body = DocumentInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    by = acting_user(request, ctx)
    if data.get("file"):
        upload = data["file"]
        document = call(ingest.document_add_file, kb=kb, by=by, filename=upload.name, data=upload.read())
    elif data.get("url"):
        document = call(ingest.document_add_url, kb=kb, by=by, url=data["url"])
    else:
        document = call(
            ingest.document_add_text, kb=kb, by=by, title=data["title"].strip(), text=data["text"]
        )
    return Response(DocumentOutput(document).data, status=status.HTTP_202_ACCEPTED)


@doc(
    methods=["GET"],
    responses={200: DocumentDetailOutput, **ERRORS},
    parameters=[
        OpenApiParameter("chunks", bool, description=f"Include the first {CHUNK_PREVIEW} chunks (preview).")
    ],
    tags=TAGS,
)
@doc(
    methods=["DELETE"], responses={204: None, **ERRORS}, tags=TAGS, description="Delete with chunks and file."
)
@api_view(["GET", "DELETE"])
def document_detail(request: Request, kb_id: int, doc_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    document = document_or_404(kb_or_404(ctx, kb_id), doc_id)
    if request.method == "DELETE":
        call(ingest.document_delete, document=document)
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = dict(DocumentOutput(document).data)
    if request.query_params.get("chunks") in ("1", "true", "yes"):
        chunks = Chunk.objects.for_org(ctx.org).filter(document=document).order_by("ordinal")[:CHUNK_PREVIEW]
        data["chunks"] = ChunkOutput(chunks, many=True).data
    return Response(data)


@doc(request=None, responses={202: DocumentOutput, **ERRORS, 409: ErrorEnvelopeSerializer}, tags=TAGS)
@api_view(["POST"])
def document_retry(request: Request, kb_id: int, doc_id: int) -> Response:
    """Ingest a failed document again."""
    ctx = writer(request)
    document = document_or_404(kb_or_404(ctx, kb_id), doc_id)
    call(ingest.document_retry, document=document)
    document.refresh_from_db()
    return Response(DocumentOutput(document).data, status=status.HTTP_202_ACCEPTED)


# --------------------------------------------------------------- search


@doc(
    request=SearchInput,
    responses={200: SearchOutput, **ERRORS, 503: ErrorEnvelopeSerializer},
    tags=TAGS,
    description="Hybrid (vector + full text, fused with Reciprocal Rank Fusion), vector or keyword search "
    "over the organization's knowledge bases. Every hit carries its rank in each method.",
)
@api_view(["POST"])
def knowledge_search(request: Request) -> Response:
    ctx = org_for(request)
    body = SearchInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    kb_ids = list(dict.fromkeys(data.get("knowledge_base_ids") or []))
    if not kb_ids:
        kb_ids = list(KnowledgeBase.objects.for_org(ctx.org).values_list("pk", flat=True))
    try:
        hits = search(
            org=ctx.org,
            query=data["query"],
            knowledge_base_ids=kb_ids,
            top_k=data["top_k"],
            mode=data["mode"],
            filters=data.get("filters") or None,
        )
    except EmbeddingError as exc:
        raise ApiError(503, "embedding_unavailable", f"The embedding provider failed: {exc}")
    except ServiceError as exc:
        raise ApiError(exc.status, exc.code, str(exc))
    except SearchError as exc:  # mostly filters the search cannot apply
        field = "filters" if "filter" in str(exc).lower() else "non_field_errors"
        raise ValidationError({field: [str(exc)]})
    return Response(
        SearchOutput(
            {
                "query": data["query"],
                "mode": data["mode"],
                "knowledge_base_ids": kb_ids,
                "hits": [hit_data(h) for h in hits],
            }
        ).data
    )
