from django.contrib import admin

from knowledge.models import Chunk, Document, KnowledgeBase


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "organization",
        "embedding_provider",
        "embedding_model",
        "embedding_dim",
        "chunk_strategy",
        "updated_at",
    ]
    list_filter = ["embedding_provider", "chunk_strategy"]
    search_fields = ["name", "organization__name"]
    raw_id_fields = ["organization", "created_by"]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "knowledge_base",
        "source",
        "status",
        "progress",
        "pages",
        "chunk_count",
        "created_at",
    ]
    list_filter = ["status", "source"]
    search_fields = ["title", "url", "sha256", "knowledge_base__name"]
    raw_id_fields = ["organization", "knowledge_base", "created_by"]
    readonly_fields = ["sha256", "size_bytes", "mime_type"]


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "ordinal", "token_count", "embedding_dim"]
    search_fields = ["text", "document__title"]
    raw_id_fields = ["organization", "knowledge_base", "document"]
    exclude = ["embedding"]
