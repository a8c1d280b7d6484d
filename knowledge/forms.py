"""Forms for the knowledge pages. Settings are checked together by the service; its refusal is put
back on the field it names."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.models import Organization
from knowledge.models import SUPPORTED_DIMENSIONS, KnowledgeBase
from knowledge.services import DEFAULT_MODELS, KnowledgeBaseInvalid

ACCEPT = ".pdf,.docx,.pptx,.xlsx,.csv,.html,.htm,.md,.markdown,.txt,.json"
MODES = [("hybrid", "Hybrid (RRF)"), ("vector", "Vector only"), ("keyword", "Keyword only")]


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))
    embedding_provider = forms.ChoiceField(
        choices=KnowledgeBase.EmbeddingProvider.choices,
        label="Embeddings",
        help_text="With “None”, search is keyword (full-text) only.",
    )
    embedding_model = forms.CharField(
        max_length=120, required=False, label="Embedding model", help_text="e.g. text-embedding-3-small"
    )
    embedding_dim = forms.TypedChoiceField(
        choices=[(d, str(d)) for d in SUPPORTED_DIMENSIONS], coerce=int, label="Dimensions"
    )
    embedding_base_url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        required=False,
        label="Endpoint base URL",
        help_text="OpenAI-compatible endpoints only (Ollama, vLLM, TEI), e.g. https://host/v1.",
    )
    chunk_strategy = forms.ChoiceField(choices=KnowledgeBase.ChunkStrategy.choices, label="Chunking")
    chunk_size = forms.IntegerField(min_value=50, max_value=4000, label="Chunk size (tokens)")
    chunk_overlap = forms.IntegerField(min_value=0, max_value=2000, label="Overlap (tokens)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        provider = data.get("embedding_provider")
        if provider and not (data.get("embedding_model") or "").strip():
            data["embedding_model"] = DEFAULT_MODELS.get(provider, ("", 0))[0]
        return data

    def refused(self, exc: KnowledgeBaseInvalid) -> None:
        self.add_error(exc.field if exc.field in self.fields else None, str(exc))

    @classmethod
    def initial_for(cls, kb: KnowledgeBase) -> dict[str, Any]:
        return {name: getattr(kb, name) for name in cls.base_fields}


class UrlForm(forms.Form):
    url = forms.URLField(max_length=2000, label="Web page URL", assume_scheme="https")


class TextForm(forms.Form):
    title = forms.CharField(max_length=300)
    text = forms.CharField(max_length=2_000_000, strip=False, widget=forms.Textarea(attrs={"rows": 6}))

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if not text.strip():
            raise forms.ValidationError("Paste some text.")
        return str(text)


class SearchForm(forms.Form):
    q = forms.CharField(max_length=2000, required=False, label="Query")
    mode = forms.ChoiceField(choices=MODES, required=False, initial="hybrid")
    kb = forms.TypedMultipleChoiceField(coerce=int, required=False, label="Knowledge bases")
    top_k = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in (3, 5, 10, 20)], coerce=int, required=False, initial=5, label="Results"
    )

    def __init__(self, *args: Any, org: Organization, **kwargs: Any):
        super().__init__(*args, **kwargs)
        kbs = KnowledgeBase.objects.for_org(org).order_by("name")
        self.fields["kb"].choices = [(kb.pk, kb.name) for kb in kbs]  # type: ignore[attr-defined]


class AttachForm(forms.Form):
    knowledge_base = forms.TypedChoiceField(coerce=int, label="Knowledge base")

    def __init__(self, *args: Any, org: Organization, exclude: list[int], **kwargs: Any):
        super().__init__(*args, **kwargs)
        kbs = KnowledgeBase.objects.for_org(org).exclude(pk__in=exclude).order_by("name")
        self.fields["knowledge_base"].choices = [(kb.pk, kb.name) for kb in kbs]  # type: ignore[attr-defined]
