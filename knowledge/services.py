"""Knowledge bases: create, change (a change of chunking or embedding re-indexes), delete; the org's
default "Uploads" base for the files API; attaching bases to agents.

Documents themselves are added, retried and deleted in `knowledge.ingest`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from accounts.models import Organization, User
from accounts.services import ServiceError
from knowledge import ingest
from knowledge.models import SUPPORTED_DIMENSIONS, KnowledgeBase

logger = logging.getLogger(__name__)

UPLOADS_NAME = "Uploads"
# Changing any of these makes the stored chunks or vectors stale.
REINDEX_FIELDS = (
    "embedding_provider",
    "embedding_model",
    "embedding_dim",
    "embedding_base_url",
    "chunk_strategy",
    "chunk_size",
    "chunk_overlap",
)
EDITABLE_FIELDS = ("name", "description", *REINDEX_FIELDS)
# Models whose output size cannot be chosen (the text-embedding-3 family takes a `dimensions`).
FIXED_DIMENSIONS = {
    "text-embedding-ada-002": 1536,
    "all-MiniLM-L6-v2": 384,
    "sentence-transformers/all-MiniLM-L6-v2": 384,
}
DEFAULT_MODELS = {
    KnowledgeBase.EmbeddingProvider.OPENAI: ("text-embedding-3-small", 1536),
    KnowledgeBase.EmbeddingProvider.LOCAL: ("all-MiniLM-L6-v2", 384),
    KnowledgeBase.EmbeddingProvider.NONE: ("", 384),
}
MIN_CHUNK, MAX_CHUNK = 50, 4000


class KnowledgeBaseInvalid(ServiceError):
    """A setting of the knowledge base is refused; `field` names it, for forms and the API."""

    def __init__(self, field: str, message: str):
        super().__init__(message, code="invalid", status=400)
        self.field = field


def default_embedding(*, org: Organization) -> dict[str, Any]:
    """OpenAI when the org (or the platform) has a key; otherwise keyword search only, which works
    everywhere. The local extra is opt-in per knowledge base, since it is not installed by default."""
    from agents.runtime.providers import is_configured

    provider = (
        KnowledgeBase.EmbeddingProvider.OPENAI
        if is_configured(org=org, provider_id="openai")
        else KnowledgeBase.EmbeddingProvider.NONE
    )
    model, dim = DEFAULT_MODELS[provider]
    return {"embedding_provider": provider, "embedding_model": model, "embedding_dim": dim}


def _validate(values: dict[str, Any]) -> None:
    """Check the settings together: the provider, model and size must fit one another and the index."""
    if not str(values.get("name") or "").strip():
        raise KnowledgeBaseInvalid("name", "Give the knowledge base a name.")
    provider = values["embedding_provider"]
    if provider not in KnowledgeBase.EmbeddingProvider.values:
        raise KnowledgeBaseInvalid("embedding_provider", f"Unknown embedding provider “{provider}”.")
    model = str(values.get("embedding_model") or "").strip()
    dim = values["embedding_dim"]
    base_url = str(values.get("embedding_base_url") or "").strip()
    if provider != KnowledgeBase.EmbeddingProvider.NONE:
        if not model:
            raise KnowledgeBaseInvalid("embedding_model", "Name the embedding model.")
        if dim not in SUPPORTED_DIMENSIONS:
            sizes = ", ".join(map(str, SUPPORTED_DIMENSIONS))
            raise KnowledgeBaseInvalid("embedding_dim", f"Use one of the indexed sizes: {sizes}.")
        fixed = FIXED_DIMENSIONS.get(model)
        if fixed is not None and dim != fixed:
            raise KnowledgeBaseInvalid("embedding_dim", f"{model} makes {fixed}-dimension vectors.")
    if provider == KnowledgeBase.EmbeddingProvider.OPENAI_COMPATIBLE and not base_url:
        raise KnowledgeBaseInvalid(
            "embedding_base_url", "An OpenAI-compatible endpoint needs its base URL, e.g. https://host/v1."
        )
    if base_url:
        error = _url_error(base_url)
        if error:
            raise KnowledgeBaseInvalid("embedding_base_url", error)
    if values["chunk_strategy"] not in KnowledgeBase.ChunkStrategy.values:
        raise KnowledgeBaseInvalid(
            "chunk_strategy", f"Unknown chunking strategy “{values['chunk_strategy']}”."
        )
    size, overlap = values["chunk_size"], values["chunk_overlap"]
    if not MIN_CHUNK <= size <= MAX_CHUNK:
        raise KnowledgeBaseInvalid("chunk_size", f"Use between {MIN_CHUNK} and {MAX_CHUNK} tokens per chunk.")
    if not 0 <= overlap <= size // 2:
        raise KnowledgeBaseInvalid("chunk_overlap", "The overlap must be at most half the chunk size.")


def _url_error(url: str) -> str | None:
    """The save-time guard every user-configured URL gets. A host that does not resolve from here
    passes (the safe client checks again when it connects, and DNS answers change)."""
    from integrations.safe_http import UnsafeURLError, validate_url

    try:
        validate_url(url)
    except UnsafeURLError as exc:
        if not str(exc).startswith("Could not resolve"):
            return str(exc)
    return None


def _model_default(field: str) -> Any:
    return KnowledgeBase._meta.get_field(field).get_default()  # type: ignore[union-attr]


def knowledge_base_create(*, org: Organization, by: User | None, name: str, **fields: Any) -> KnowledgeBase:
    """Unset embedding settings take the org's default; unset chunking settings the model's."""
    values: dict[str, Any] = {field: _model_default(field) for field in REINDEX_FIELDS}
    if "embedding_provider" in fields and "embedding_model" not in fields:
        model, dim = DEFAULT_MODELS.get(fields["embedding_provider"], ("", values["embedding_dim"]))
        values.update(embedding_model=model, embedding_dim=fields.get("embedding_dim", dim))
    elif "embedding_provider" not in fields:
        values.update(default_embedding(org=org))
    values.update({k: v for k, v in fields.items() if k in EDITABLE_FIELDS})
    values["name"] = name.strip()
    _validate(values)
    return KnowledgeBase.objects.create(organization=org, created_by=by, **values)


@transaction.atomic
def knowledge_base_update(*, kb: KnowledgeBase, by: User | None, **fields: Any) -> KnowledgeBase:
    """Change settings in place. A change of chunking or embedding re-indexes every document."""
    changed = [k for k in EDITABLE_FIELDS if k in fields and getattr(kb, k) != fields[k]]
    if not changed:
        return kb
    values = {k: getattr(kb, k) for k in EDITABLE_FIELDS}
    values.update({k: fields[k] for k in changed})
    if values["embedding_provider"] == KnowledgeBase.EmbeddingProvider.NONE:
        values["embedding_base_url"] = ""
    _validate(values)
    changed = [k for k in EDITABLE_FIELDS if getattr(kb, k) != values[k]]
    for key in changed:
        setattr(kb, key, values[key])
    if isinstance(kb.name, str):
        kb.name = kb.name.strip()
    kb.save(update_fields=[*changed, "updated_at"])
    if any(k in REINDEX_FIELDS for k in changed) and kb.documents.exists():
        ingest.knowledge_base_reindex(kb=kb)
    return kb


@transaction.atomic
def knowledge_base_delete(*, kb: KnowledgeBase) -> None:
    """Each document goes through ingest (its stored file and chunks), then the base itself. One
    transaction: the stored files go once it commits, so a failure deletes nothing."""
    for document in kb.documents.all().iterator():
        ingest.document_delete(document=document)
    kb.delete()


def uploads_knowledge_base(*, org: Organization, by: User | None) -> KnowledgeBase:
    """The base a file uploaded without one goes to: the org's "Uploads", made on first use."""
    existing = KnowledgeBase.objects.for_org(org).filter(name=UPLOADS_NAME).order_by("pk").first()
    if existing is not None:
        return existing
    return knowledge_base_create(
        org=org, by=by, name=UPLOADS_NAME, description="Files uploaded without choosing a knowledge base."
    )


# --------------------------------------------------------------- agents


def agent_knowledge_bases(*, agent: Any) -> tuple[list[int], Any]:
    """The knowledge base ids of the agent's latest config, and that version (None if it has none)."""
    latest = agent.latest_version()
    config = latest.config if latest else {}
    return list((config.get("knowledge") or {}).get("knowledge_base_ids") or []), latest


def agent_knowledge_attach(*, agent: Any, by: User | None, kb: KnowledgeBase, publish: bool = False) -> Any:
    """A new draft version of the agent with `kb` attached (nothing if it already is). Returns the
    version that has it. `publish` makes runs use it at once."""
    from agents import services as agent_services

    if kb.organization_id != agent.organization_id:
        raise ServiceError("No such knowledge base in this organization.", code="not_found", status=404)
    config = agent_services.agent_config_draft(agent=agent)
    knowledge = dict(config.get("knowledge") or {})
    ids = list(knowledge.get("knowledge_base_ids") or [])
    if kb.pk in ids:
        version = agent.latest_version()
    else:
        knowledge["knowledge_base_ids"] = [*ids, kb.pk]
        config["knowledge"] = knowledge
        version = agent_services.version_create(
            agent=agent, by=by, config=config, note=f"Attached knowledge base “{kb.name}”"
        )
    if publish and version is not None:
        agent_services.agent_publish(agent=agent, version=version, by=by)
    return version


def agent_knowledge_detach(*, agent: Any, by: User | None, kb_id: int, publish: bool = False) -> Any:
    """A new draft version without knowledge base `kb_id`; a 404 if it is not attached."""
    from agents import services as agent_services

    config = agent_services.agent_config_draft(agent=agent)
    knowledge = dict(config.get("knowledge") or {})
    ids = list(knowledge.get("knowledge_base_ids") or [])
    if kb_id not in ids:
        raise ServiceError("That knowledge base is not attached to this agent.", code="not_found", status=404)
    knowledge["knowledge_base_ids"] = [i for i in ids if i != kb_id]
    config["knowledge"] = knowledge
    name = (
        KnowledgeBase.objects.for_org(agent.organization_id).filter(pk=kb_id).values_list("name", flat=True)
    )
    label = f"“{name[0]}”" if name else f"#{kb_id}"
    version = agent_services.version_create(
        agent=agent, by=by, config=config, note=f"Detached knowledge base {label}"
    )
    if publish:
        agent_services.agent_publish(agent=agent, version=version, by=by)
    return version
