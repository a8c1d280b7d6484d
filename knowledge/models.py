from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import VectorField

from accounts.tenancy import TenantModel, TenantQuerySet

# Embedding sizes the chunk table indexes (one partial HNSW index per size, see the migration).
# HNSW on `vector` is limited to 2000 dimensions.
SUPPORTED_DIMENSIONS = (384, 768, 1024, 1536)


class KnowledgeBase(TenantModel):
    class EmbeddingProvider(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible endpoint (Ollama, vLLM, TEI)"
        LOCAL = "local", "Local sentence-transformers (optional extra)"
        NONE = "none", "None (keyword search only)"

    class ChunkStrategy(models.TextChoices):
        FIXED = "fixed", "Fixed size (tokens)"
        RECURSIVE = "recursive", "Recursive by structure"
        MARKDOWN = "markdown", "Markdown / heading-aware"

    name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True)
    embedding_provider = models.CharField(
        max_length=20, choices=EmbeddingProvider.choices, default=EmbeddingProvider.OPENAI
    )
    embedding_model = models.CharField(max_length=120, default="text-embedding-3-small")
    embedding_dim = models.PositiveIntegerField(default=1536)
    embedding_base_url = models.URLField(blank=True, max_length=500)
    chunk_strategy = models.CharField(
        max_length=10, choices=ChunkStrategy.choices, default=ChunkStrategy.RECURSIVE
    )
    chunk_size = models.PositiveIntegerField(default=400, help_text="tokens per chunk")
    chunk_overlap = models.PositiveIntegerField(default=50, help_text="tokens shared by neighbouring chunks")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_embeddings(self) -> bool:
        return self.embedding_provider != self.EmbeddingProvider.NONE


class DocumentQuerySet(TenantQuerySet):
    def ready(self) -> DocumentQuerySet:
        return self.filter(status=Document.Status.READY)


class Document(TenantModel):
    class Source(models.TextChoices):
        FILE = "file", "File"
        URL = "url", "URL"
        TEXT = "text", "Pasted text"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="documents")
    source = models.CharField(max_length=5, choices=Source.choices, default=Source.FILE)
    title = models.CharField(max_length=300)
    file = models.FileField(upload_to="knowledge/%Y/%m/", blank=True, max_length=500)
    url = models.URLField(blank=True, max_length=2000)
    mime_type = models.CharField(max_length=120, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    pages = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_tokens = models.PositiveIntegerField(default=0, help_text="tokens sent to the embedding model")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DocumentQuerySet.as_manager()  # type: ignore[misc, assignment]

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["knowledge_base", "sha256"], name="uniq_document_per_kb_sha256")
        ]

    def __str__(self) -> str:
        return self.title

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()


class Chunk(TenantModel):
    """A searchable piece of a document. `knowledge_base` is denormalized so every search filters on
    one indexed column. The embedding column has no fixed size; each supported size has its own
    partial HNSW index over `embedding::vector(N)` (see migrations)."""

    knowledge_base = models.ForeignKey(KnowledgeBase, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)  # page, heading_path, source
    token_count = models.PositiveIntegerField(default=0)
    embedding = VectorField(null=True, blank=True)
    embedding_dim = models.PositiveSmallIntegerField(null=True, blank=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("text", config="english"), output_field=SearchVectorField(), db_persist=True
    )

    class Meta:
        ordering = ["document_id", "ordinal"]
        indexes = [
            models.Index(fields=["knowledge_base", "document", "ordinal"]),
            GinIndex(fields=["search_vector"], name="chunk_search_vector_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"
