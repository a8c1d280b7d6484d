"""Knowledge API serializers: inputs (what clients send) apart from outputs (what they get back)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from knowledge.models import SUPPORTED_DIMENSIONS, Chunk, Document, KnowledgeBase

# ------------------------------------------------------------------ inputs


class KnowledgeBaseInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    description = serializers.CharField(max_length=500, allow_blank=True, required=False)
    embedding_provider = serializers.ChoiceField(
        choices=KnowledgeBase.EmbeddingProvider.choices,
        required=False,
        help_text="Default: openai when a key is configured, else none (keyword search only).",
    )
    embedding_model = serializers.CharField(max_length=120, allow_blank=True, required=False)
    embedding_dim = serializers.ChoiceField(choices=list(SUPPORTED_DIMENSIONS), required=False)
    embedding_base_url = serializers.URLField(
        max_length=500, allow_blank=True, required=False, help_text="For openai_compatible endpoints."
    )
    chunk_strategy = serializers.ChoiceField(choices=KnowledgeBase.ChunkStrategy.choices, required=False)
    chunk_size = serializers.IntegerField(min_value=50, max_value=4000, required=False)
    chunk_overlap = serializers.IntegerField(min_value=0, max_value=2000, required=False)


class DocumentInput(serializers.Serializer):
    """One of: a multipart `file`, a `url`, or a `title` with `text`."""

    file = serializers.FileField(required=False, help_text="Multipart upload.")
    url = serializers.URLField(max_length=2000, required=False)
    title = serializers.CharField(max_length=300, required=False)
    text = serializers.CharField(max_length=2_000_000, required=False, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("file", "url", "text") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError("Send exactly one of: a file, a url, or a title with text.")
        if given == ["text"] and not (attrs.get("title") or "").strip():
            raise serializers.ValidationError({"title": ["Pasted text needs a title."]})
        return attrs


class FileUploadInput(serializers.Serializer):
    file = serializers.FileField()
    knowledge_base_id = serializers.IntegerField(
        min_value=1, required=False, help_text="Default: the organization's “Uploads” knowledge base."
    )


class AgentFileInput(serializers.Serializer):
    file_id = serializers.IntegerField(min_value=1)
    publish = serializers.BooleanField(
        default=False, help_text="Publish the new version at once, so runs search the file's knowledge base."
    )


class SearchInput(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    knowledge_base_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=50,
        help_text="Default: every knowledge base of the organization.",
    )
    top_k = serializers.IntegerField(min_value=1, max_value=50, default=5)
    mode = serializers.ChoiceField(choices=["hybrid", "vector", "keyword"], default="hybrid")
    filters = serializers.DictField(
        required=False,
        allow_empty=True,
        help_text='Filters: {"document_ids": [3, 4]}, a chunk metadata value {"page": 2} or any of a list '
        '{"page": [1, 2]}, or a numeric range {"page": {"gte": 2, "lte": 5}}.',
    )


# ----------------------------------------------------------------- outputs


class KnowledgeBaseOutput(serializers.ModelSerializer):
    document_count = serializers.IntegerField(read_only=True, default=0)
    ready_count = serializers.IntegerField(read_only=True, default=0)
    failed_count = serializers.IntegerField(read_only=True, default=0)
    chunk_count = serializers.IntegerField(read_only=True, default=0)
    search_modes = serializers.SerializerMethodField()

    class Meta:
        model = KnowledgeBase
        fields = [
            "id",
            "name",
            "description",
            "embedding_provider",
            "embedding_model",
            "embedding_dim",
            "embedding_base_url",
            "chunk_strategy",
            "chunk_size",
            "chunk_overlap",
            "document_count",
            "ready_count",
            "failed_count",
            "chunk_count",
            "search_modes",
            "created_at",
            "updated_at",
        ]

    def get_search_modes(self, obj: KnowledgeBase) -> list[str]:
        return ["hybrid", "vector", "keyword"] if obj.has_embeddings else ["keyword"]


class DocumentOutput(serializers.ModelSerializer):
    knowledge_base_id = serializers.IntegerField()
    source = serializers.CharField(help_text="file, url or text")  # type: ignore[assignment]
    status = serializers.CharField(help_text="pending, processing, ready or failed")

    class Meta:
        model = Document
        fields = [
            "id",
            "knowledge_base_id",
            "title",
            "source",
            "url",
            "mime_type",
            "sha256",
            "size_bytes",
            "status",
            "progress",
            "error",
            "pages",
            "chunk_count",
            "embedding_tokens",
            "created_at",
            "updated_at",
        ]


class ChunkOutput(serializers.ModelSerializer):
    page = serializers.SerializerMethodField()
    heading_path = serializers.SerializerMethodField()

    class Meta:
        model = Chunk
        fields = ["id", "ordinal", "page", "heading_path", "token_count", "text"]

    def get_page(self, obj: Chunk) -> int | None:
        page = (obj.metadata or {}).get("page")
        return page if isinstance(page, int) else None

    def get_heading_path(self, obj: Chunk) -> list[str]:
        path = (obj.metadata or {}).get("heading_path") or []
        return [str(h) for h in path] if isinstance(path, list) else [str(path)]


class DocumentDetailOutput(DocumentOutput):
    chunks = ChunkOutput(many=True, required=False, help_text="With ?chunks=1: the first chunks, in order.")

    class Meta(DocumentOutput.Meta):
        fields = [*DocumentOutput.Meta.fields, "chunks"]


class FileOutput(serializers.ModelSerializer):
    """A document seen as a file (doc 001 §4.5)."""

    filename = serializers.CharField(source="title")
    knowledge_base_id = serializers.IntegerField()
    knowledge_base_name = serializers.CharField(source="knowledge_base.name")
    status = serializers.CharField(help_text="pending, processing, ready or failed")

    class Meta:
        model = Document
        fields = [
            "id",
            "filename",
            "knowledge_base_id",
            "knowledge_base_name",
            "mime_type",
            "sha256",
            "size_bytes",
            "status",
            "progress",
            "error",
            "pages",
            "chunk_count",
            "created_at",
        ]


class AgentFileOutput(serializers.Serializer):
    agent_id = serializers.IntegerField()
    version = serializers.IntegerField(allow_null=True, help_text="The agent version that has the file.")
    knowledge_base_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Every knowledge base that version searches."
    )
    file = FileOutput()


class RanksOutput(serializers.Serializer):
    vector = serializers.IntegerField(allow_null=True, help_text="1-based rank in vector search, if found.")
    keyword = serializers.IntegerField(
        allow_null=True, help_text="1-based rank in full-text search, if found."
    )
    fused = serializers.IntegerField(allow_null=True, help_text="1-based rank after Reciprocal Rank Fusion.")


class SearchHitOutput(serializers.Serializer):
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    document_title = serializers.CharField()
    knowledge_base_id = serializers.IntegerField()
    page = serializers.IntegerField(allow_null=True)
    heading_path = serializers.ListField(child=serializers.CharField())
    text = serializers.CharField()
    score = serializers.FloatField()
    ranks = RanksOutput()


class SearchOutput(serializers.Serializer):
    query = serializers.CharField()
    mode = serializers.CharField()
    knowledge_base_ids = serializers.ListField(child=serializers.IntegerField())
    hits = SearchHitOutput(many=True)
