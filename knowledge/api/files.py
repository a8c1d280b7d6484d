"""The file endpoints of doc 001 §4.5. A file is a document uploaded to a knowledge base; attaching a
file to an agent attaches its knowledge base (a new draft version of the agent's config)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from agents.api.common import (
    ERRORS,
    acting_user,
    agent_or_404,
    call,
    doc,
    org_for,
    paginate,
    query_int,
    writer,
)
from knowledge import ingest, services
from knowledge.api.common import UPLOAD_ERRORS, file_or_404, kb_or_404
from knowledge.models import Document
from knowledge.serializers import AgentFileInput, AgentFileOutput, FileOutput, FileUploadInput

FILE_TAGS = ["files"]


@doc(
    request={"multipart/form-data": FileUploadInput},
    responses={201: FileOutput, **UPLOAD_ERRORS},
    tags=FILE_TAGS,
    description="Upload a file into a knowledge base (default: the organization's “Uploads”). "
    "It is extracted, chunked and embedded in the background. An unsupported or mismatched type is a "
    "415, a file over the limit a 413, the same content twice in one knowledge base a 409.",
)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def file_upload(request: Request) -> Response:
    ctx = writer(request)
    body = FileUploadInput(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    by = acting_user(request, ctx)
    if data.get("knowledge_base_id"):
        kb = kb_or_404(ctx, data["knowledge_base_id"])
    else:
        kb = call(services.uploads_knowledge_base, org=ctx.org, by=by)
    upload = data["file"]
    document = call(ingest.document_add_file, kb=kb, by=by, filename=upload.name, data=upload.read())
    return Response(FileOutput(document).data, status=status.HTTP_201_CREATED)


@doc(
    responses={200: FileOutput(many=True), **ERRORS},
    parameters=[OpenApiParameter("knowledge_base_id", int, description="Only this knowledge base's files.")],
    tags=FILE_TAGS,
)
@api_view(["GET"])
def file_list(request: Request) -> Response:
    ctx = org_for(request)
    queryset = Document.objects.for_org(ctx.org).filter(source=Document.Source.FILE)
    kb_id = query_int(request, "knowledge_base_id")
    if kb_id is not None:
        queryset = queryset.filter(knowledge_base=kb_or_404(ctx, kb_id))
    return paginate(
        request, queryset.select_related("knowledge_base").order_by("-created_at", "-pk"), FileOutput
    )


@doc(methods=["GET"], responses={200: FileOutput, **ERRORS}, tags=FILE_TAGS)
@doc(
    methods=["DELETE"],
    responses={204: None, **ERRORS},
    tags=FILE_TAGS,
    description="Delete the file, its stored copy and its chunks.",
)
@api_view(["GET", "DELETE"])
def file_detail(request: Request, file_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    document = file_or_404(ctx, file_id)
    if request.method == "DELETE":
        call(ingest.document_delete, document=document)
        return Response(status=status.HTTP_204_NO_CONTENT)
    return Response(FileOutput(document).data)


# -------------------------------------------------------------- agents


@doc(
    methods=["GET"],
    responses={200: FileOutput(many=True), **ERRORS},
    tags=FILE_TAGS,
    description="The files of every knowledge base the agent's latest version searches.",
)
@doc(
    methods=["POST"],
    request=AgentFileInput,
    responses={201: AgentFileOutput, **ERRORS},
    tags=FILE_TAGS,
    description="Give the agent a file: its knowledge base is attached in a new draft version of the "
    "agent (nothing changes if it already is). `publish` makes runs use that version at once.",
)
@api_view(["GET", "POST"])
def agent_file_list(request: Request, agent_id: int) -> Response:
    ctx = org_for(request) if request.method == "GET" else writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    if request.method == "GET":
        kb_ids, _ = services.agent_knowledge_bases(agent=agent)
        queryset = (
            Document.objects.for_org(ctx.org)
            .filter(source=Document.Source.FILE, knowledge_base_id__in=kb_ids)
            .select_related("knowledge_base")
            .order_by("-created_at", "-pk")
        )
        return paginate(request, queryset, FileOutput)
    body = AgentFileInput(data=request.data)
    body.is_valid(raise_exception=True)
    document = file_or_404(ctx, body.validated_data["file_id"])
    version = call(
        services.agent_knowledge_attach,
        agent=agent,
        by=acting_user(request, ctx),
        kb=document.knowledge_base,
        publish=body.validated_data["publish"],
    )
    kb_ids, _ = services.agent_knowledge_bases(agent=agent)
    return Response(
        AgentFileOutput(
            {
                "agent_id": agent.pk,
                "version": version.number if version else None,
                "knowledge_base_ids": kb_ids,
                "file": document,
            }
        ).data,
        status=status.HTTP_201_CREATED,
    )


@doc(
    responses={204: None, **ERRORS},
    tags=FILE_TAGS,
    description="Take the file away from the agent: its knowledge base is detached in a new draft version "
    "(so the agent stops searching that base's other files too).",
)
@api_view(["DELETE"])
def agent_file_detail(request: Request, agent_id: int, file_id: int) -> Response:
    ctx = writer(request)
    agent = agent_or_404(request, ctx, agent_id)
    document = file_or_404(ctx, file_id)
    call(
        services.agent_knowledge_detach,
        agent=agent,
        by=acting_user(request, ctx),
        kb_id=document.knowledge_base_id,
    )
    return Response(status=status.HTTP_204_NO_CONTENT)
