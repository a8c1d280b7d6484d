"""Knowledge ingestion services, and the pipeline the `ingest` queue runs for one document.

Adding a document checks everything that can be checked at once (size caps, the type by content,
duplicates, the URL's address), stores the bytes and queues the pipeline on commit. The pipeline
claims the document with a conditional update, then reads, extracts, chunks, embeds and stores,
publishing progress at each stage. A document's own failure marks it FAILED with a readable reason
and never reaches Celery, so the worker goes on with the next one.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Organization, User
from accounts.services import ServiceError
from integrations.safe_http import OutboundHTTPError, UnsafeURLError, safe_request, validate_url
from knowledge.chunking import ChunkDraft, chunk
from knowledge.embeddings import EmbeddingError, batch_size, embed_texts
from knowledge.extraction import MIME_TYPES, TEXT_KINDS, ExtractionError, as_utf8, extract, sniff
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.progress import publish_progress

logger = logging.getLogger(__name__)

Status = Document.Status
_EXTENSIONS = {"md": ".md", "txt": ".txt", "html": ".html", "json": ".json", "csv": ".csv"}


class IngestError(Exception):
    """The document cannot be ingested; the message is the reason shown to people."""


class _Abandoned(Exception):
    """The document was deleted or reset (re-index) while this run worked on it."""


# ------------------------------------------------------------------ checks


def _size(n: int) -> str:
    return filesizeformat(n).replace("\xa0", " ")


def _file_size_error(name: str, size: int) -> str | None:
    cap = settings.KNOWLEDGE_MAX_FILE_BYTES
    return f"“{name}” is {_size(size)}; the limit is {_size(cap)} per file." if size > cap else None


def _org_quota_error(org_id: int, adding: int, exclude: int = 0) -> str | None:
    documents = Document.objects.for_org(org_id).exclude(pk=exclude)
    used = documents.aggregate(total=Sum("size_bytes"))["total"] or 0
    cap = settings.KNOWLEDGE_MAX_ORG_BYTES
    if used + adding <= cap:
        return None
    return f"This organization's documents would take {_size(used + adding)}; the limit is {_size(cap)}."


def _duplicate(kb: KnowledgeBase, digest: str, exclude: int = 0) -> Document | None:
    return Document.objects.filter(knowledge_base=kb, sha256=digest).exclude(pk=exclude).first()


def _lock_org(org_id: int) -> None:
    # Serializes additions per organization, so two uploads cannot both fit under the quota.
    Organization.objects.select_for_update().filter(pk=org_id).first()


def _queue(document_id: int) -> None:
    from knowledge.tasks import ingest_document

    transaction.on_commit(lambda: ingest_document.delay(document_id))


# ------------------------------------------------------------------ services


def _add_bytes(
    *, kb: KnowledgeBase, by: User | None, name: str, data: bytes, source: str, title: str
) -> Document:
    if error := _file_size_error(title, len(data)):
        raise ServiceError(error, code="too_large", status=413)
    try:
        kind = sniff(data, name)
    except ExtractionError as exc:
        raise ServiceError(str(exc), code="unsupported_type", status=415)
    digest = Document.digest(data)
    with transaction.atomic():
        _lock_org(kb.organization_id)
        if existing := _duplicate(kb, digest):
            raise ServiceError(
                f"“{existing.title}” is already in this knowledge base.", code="duplicate", status=409
            )
        if error := _org_quota_error(kb.organization_id, len(data)):
            raise ServiceError(error, code="quota_exceeded", status=413)
        from billing import limits

        limits.check(kb.organization_id, "kb_storage_mb", adding=len(data) / limits.MB)
        document = Document(
            organization_id=kb.organization_id,
            knowledge_base=kb,
            source=source,
            title=title[:300],
            mime_type=MIME_TYPES[kind],
            sha256=digest,
            size_bytes=len(data),
            created_by=by,
        )
        document.file.save(name, ContentFile(data), save=False)
        try:
            with transaction.atomic():
                document.save()
        except BaseException as exc:
            default_storage.delete(document.file.name or name)  # nothing stays behind a refused upload
            if isinstance(exc, IntegrityError):
                raise ServiceError(
                    "This file is already in this knowledge base.", code="duplicate", status=409
                )
            raise
        _queue(document.pk)
    return document


def _storage_name(filename: str, default_ext: str = "") -> str:
    """A unique, safe name: S3 storage overwrites by default, and two documents (even with the same
    content, in two knowledge bases) must never share a file that deleting one would remove."""
    path = PurePosixPath(filename.replace("\\", "/"))
    stem = re.sub(r"[^\w.-]+", "_", path.stem).strip("._")[:100] or "document"
    suffix = re.sub(r"[^\w.]+", "", path.suffix)[:10].lower() or default_ext
    return f"{uuid.uuid4().hex[:16]}-{stem}{suffix}"


def document_add_file(*, kb: KnowledgeBase, by: User | None, filename: str, data: bytes) -> Document:
    title = PurePosixPath(filename.replace("\\", "/")).name or "document"
    return _add_bytes(
        kb=kb, by=by, name=_storage_name(title), data=data, source=Document.Source.FILE, title=title
    )


def document_add_text(*, kb: KnowledgeBase, by: User | None, title: str, text: str) -> Document:
    if not text.strip():
        raise ServiceError("The text is empty.", code="empty", status=400)
    title = title.strip() or "Pasted text"
    # Stored as Markdown: plain text reads the same, and any headings reach the chunks.
    name = _storage_name(f"{slugify(title)[:100] or 'text'}.md")
    return _add_bytes(kb=kb, by=by, name=name, data=text.encode(), source=Document.Source.TEXT, title=title)


def document_add_url(*, kb: KnowledgeBase, by: User | None, url: str) -> Document:
    url = url.strip()
    try:
        validate_url(url)
    except UnsafeURLError as exc:
        # An unresolvable host is let through: the fetch resolves (and checks) it again.
        if not str(exc).startswith("Could not resolve"):
            raise ServiceError(str(exc), code="unsafe_url", status=400)
    with transaction.atomic():
        _lock_org(kb.organization_id)
        if Document.objects.filter(knowledge_base=kb, url=url).exists():
            raise ServiceError("This URL is already in this knowledge base.", code="duplicate", status=409)
        from billing import limits

        limits.check(kb.organization_id, "kb_storage_mb", adding=0)  # its size is known once fetched
        document = Document.objects.create(
            organization_id=kb.organization_id,
            knowledge_base=kb,
            source=Document.Source.URL,
            title=url[:300],
            url=url,
            sha256=Document.digest(f"url:{url}".encode()),  # the content's digest replaces it once fetched
            created_by=by,
        )
        _queue(document.pk)
    return document


def document_delete(*, document: Document) -> None:
    name = document.file.name
    with transaction.atomic():
        Chunk.objects.filter(document_id=document.pk).delete()
        document.delete()
        if name:
            transaction.on_commit(lambda: default_storage.delete(name))


def _stale() -> Q:
    """PROCESSING by a worker that stopped refreshing it (it crashed): free to take over."""
    lease = timezone.now() - timedelta(seconds=settings.KNOWLEDGE_INGEST_LEASE_SECONDS)
    return Q(status=Status.PROCESSING, updated_at__lt=lease)


def document_retry(*, document: Document) -> Document:
    """Queue a failed (or stuck) document again, e.g. once the embedding provider is back."""
    with transaction.atomic():
        reset = Document.objects.filter(Q(status=Status.FAILED) | _stale(), pk=document.pk)
        if not reset.update(status=Status.PENDING, progress=0, error="", updated_at=timezone.now()):
            raise ServiceError("Only a failed document can be retried.", code="not_failed", status=409)
        _queue(document.pk)
    document.refresh_from_db()
    publish_progress(
        kb_id=document.knowledge_base_id, document_id=document.pk, status=Status.PENDING, progress=0
    )
    return document


def knowledge_base_reindex(*, kb: KnowledgeBase) -> int:
    """Re-chunk and re-embed every document, e.g. after the chunking or embedding settings changed.
    Old chunks stay searchable until each document's new ones replace them."""
    from knowledge.tasks import reindex_knowledge_base

    with transaction.atomic():
        count = (
            Document.objects.filter(knowledge_base=kb)
            .exclude(status=Status.PENDING)
            .update(status=Status.PENDING, progress=0, error="", updated_at=timezone.now())
        )
        transaction.on_commit(lambda: reindex_knowledge_base.delay(kb.pk))
    return count


def knowledge_base_queue_pending(*, kb_id: int) -> int:
    """Queue the pipeline for every pending document of a knowledge base (claims make repeats harmless)."""
    from knowledge.tasks import ingest_document

    ids = list(
        Document.objects.filter(knowledge_base_id=kb_id, status=Status.PENDING).values_list("pk", flat=True)
    )
    for document_id in ids:
        ingest_document.delay(document_id)
    return len(ids)


# ------------------------------------------------------------------ pipeline


class _Run:
    def __init__(self, document: Document) -> None:
        self.document = document
        self.kb = document.knowledge_base
        self.progress = 0

    def step(self, progress: int) -> None:
        self.progress = progress
        updated = Document.objects.filter(pk=self.document.pk, status=Status.PROCESSING).update(
            progress=progress, updated_at=timezone.now()
        )
        if not updated:
            raise _Abandoned
        self._publish(Status.PROCESSING)

    def _publish(self, status: str, error: str = "") -> None:
        publish_progress(
            kb_id=self.kb.pk, document_id=self.document.pk, status=status, progress=self.progress, error=error
        )

    def execute(self) -> None:
        self.step(5)
        data, filename, mime = self.read()
        extracted = extract(data, filename, mime)
        self.step(25)
        strategy = (self.kb.chunk_strategy, self.kb.chunk_size, self.kb.chunk_overlap)
        drafts = chunk(extracted.text_units, *strategy, source=self.document.title)
        if not drafts:
            raise ExtractionError("no text found")
        self.step(35)
        vectors, tokens = self.embed(drafts)
        self.store(drafts, vectors, tokens, pages=extracted.pages, mime=extracted.mime)
        self.progress = 100
        self._publish(Status.READY)

    def read(self) -> tuple[bytes, str, str | None]:
        document = self.document
        if name := document.file.name:
            with default_storage.open(name, "rb") as handle:
                return handle.read(), name, None
        if document.source != Document.Source.URL:
            raise IngestError("The stored file is missing.")
        return self.fetch()

    def fetch(self) -> tuple[bytes, str, str | None]:
        document = self.document
        cap, timeout = settings.KNOWLEDGE_MAX_FILE_BYTES, settings.KNOWLEDGE_URL_TIMEOUT_SECONDS
        response = safe_request("GET", document.url, max_bytes=cap, timeout=timeout)
        if response.status_code >= 400:
            raise IngestError(f"The URL answered with HTTP {response.status_code}.")
        data, mime = response.content, response.headers.get("content-type")
        filename = PurePosixPath(httpx.URL(response.url).path).name or "index"
        kind = sniff(data, filename, mime)
        if kind in TEXT_KINDS:
            data = as_utf8(data, mime)
        digest = Document.digest(data)
        with transaction.atomic():
            _lock_org(document.organization_id)
            if existing := _duplicate(self.kb, digest, exclude=document.pk):
                raise IngestError(
                    f"The same content is already in this knowledge base as “{existing.title}”."
                )
            if error := _org_quota_error(document.organization_id, len(data), exclude=document.pk):
                raise IngestError(error)
            # Keep the fetched bytes, so a retry or a re-index reads them instead of fetching again.
            name = _storage_name(filename, default_ext=_EXTENSIONS.get(kind, ""))
            stored = default_storage.save(
                document.file.field.generate_filename(document, name), ContentFile(data)
            )
            kept = Document.objects.filter(pk=document.pk, status=Status.PROCESSING).update(
                file=stored, sha256=digest, size_bytes=len(data), mime_type=MIME_TYPES[kind], updated_at=timezone.now()
            )  # fmt: skip
            if not kept:
                default_storage.delete(stored)  # deleted meanwhile: leave no file behind
                raise _Abandoned
        return data, stored, None

    def embed(self, drafts: list[ChunkDraft]) -> tuple[list[Any], int]:
        vectors: list[Any] = [None] * len(drafts)
        if not self.kb.has_embeddings:
            return vectors, 0
        # Batches of the provider's own size: one request each (retried there), progress after each.
        batch, tokens = batch_size(), 0
        for start in range(0, len(drafts), batch):
            texts = [draft.text for draft in drafts[start : start + batch]]
            result = embed_texts(kb=self.kb, texts=texts)
            tokens += result.tokens
            if result.vectors is not None:
                if len(result.vectors) != len(texts):
                    raise IngestError(
                        f"The embedding provider returned {len(result.vectors)} vectors for {len(texts)} texts."
                    )
                vectors[start : start + len(texts)] = result.vectors
            self.step(35 + 60 * min(start + batch, len(drafts)) // len(drafts))
        return vectors, tokens

    def store(
        self, drafts: list[ChunkDraft], vectors: list[Any], tokens: int, *, pages: int, mime: str
    ) -> None:
        from knowledge.services import REINDEX_FIELDS  # services imports this module

        document = self.document
        rows = [
            Chunk(
                organization_id=document.organization_id,
                knowledge_base_id=self.kb.pk,
                document_id=document.pk,
                ordinal=draft.ordinal,
                text=draft.text.replace("\x00", ""),
                metadata=draft.metadata,
                token_count=draft.token_count,
                embedding=vector,
                embedding_dim=len(vector) if vector is not None else None,
            )
            for draft, vector in zip(drafts, vectors, strict=True)
        ]
        with transaction.atomic():
            current = Document.objects.select_for_update().filter(pk=document.pk, status=Status.PROCESSING)
            # Settings changed meanwhile: the re-index that followed has queued a run with the new ones.
            same = {field: getattr(self.kb, field) for field in REINDEX_FIELDS}
            same_settings = KnowledgeBase.objects.filter(pk=self.kb.pk, **same)
            if not current.exists() or not same_settings.exists():
                raise _Abandoned
            # Replacing in one transaction keeps the previous chunks searchable during a re-index.
            Chunk.objects.filter(document_id=document.pk).delete()
            Chunk.objects.bulk_create(rows, batch_size=500)
            Document.objects.filter(pk=document.pk).update(
                status=Status.READY, progress=100, error="", pages=pages, chunk_count=len(rows),
                embedding_tokens=tokens, mime_type=mime, updated_at=timezone.now(),
            )  # fmt: skip
            if tokens:
                # Billing (#6): embedding tokens are charged with the chunks they made, in this transaction.
                from billing.hooks import charge_embeddings

                charge_embeddings(
                    org_id=document.organization_id,
                    document_id=document.pk,
                    model=self.kb.embedding_model,
                    tokens=tokens,
                    key=f"embed:{document.pk}:{time.time_ns()}",
                )

    def fail(self, reason: str) -> None:
        failed = Document.objects.filter(pk=self.document.pk, status=Status.PROCESSING).update(
            status=Status.FAILED, error=reason[:2000], updated_at=timezone.now()
        )
        if failed:
            self._publish(Status.FAILED, reason)


_READABLE = (ExtractionError, IngestError, EmbeddingError, ServiceError, UnsafeURLError, OutboundHTTPError)


def ingest(document_id: int) -> str:
    """Run the pipeline for one document; returns what happened (for logs and tests)."""
    claimed = Document.objects.filter(Q(status=Status.PENDING) | _stale(), pk=document_id).update(
        status=Status.PROCESSING, progress=0, error="", updated_at=timezone.now()
    )
    document = Document.objects.select_related("knowledge_base").filter(pk=document_id).first()
    if not claimed or document is None:
        return "skipped"
    run = _Run(document)
    try:
        run.execute()
    except _Abandoned:
        return "abandoned"
    except Exception as exc:
        if isinstance(exc, _READABLE):
            reason = str(exc)
        else:
            logger.exception("ingesting document %s failed", document_id)
            reason = f"Ingestion failed: {type(exc).__name__}: {exc}"
        run.fail(reason)
        return "failed"
    return "ready"
