"""Embeddings: the fake OpenAI-compatible server over real HTTP; provider failures come from a tiny
stub server (the provider is outside the machine, so it is faked at the HTTP boundary)."""

from __future__ import annotations

import importlib.util
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents.models import ProviderKey
from bench.stack import free_port
from integrations.vault import vault_encrypt
from knowledge.embeddings import LOCAL_INSTALL_HINT, EmbeddingError, embed_query, embed_texts
from knowledge.models import KnowledgeBase


@pytest.fixture(autouse=True)
def _fast_retries(settings):
    settings.EMBEDDING_RETRY_BACKOFF_SECONDS = 0.01


def _cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def _embedding_calls(llm):
    return llm.stats()["endpoints"].get("POST /v1/embeddings", 0)


def test_none_provider_has_no_vectors(make_kb):
    kb = make_kb(embedding_provider=KnowledgeBase.EmbeddingProvider.NONE)

    result = embed_texts(kb=kb, texts=["anything"])

    assert result.vectors is None and result.tokens == 0
    assert embed_query(kb=kb, text="anything") is None


def test_openai_batches_and_counts_tokens(embedded_kb, llm, settings):
    settings.EMBEDDING_BATCH_SIZE = 2
    texts = ["buy a car", "purchase an automobile", "a happy dog", "quarterly report", "tax forms"]

    result = embed_texts(kb=embedded_kb, texts=texts)

    assert _embedding_calls(llm) == 3  # 2 + 2 + 1
    assert len(result.vectors) == 5 and all(len(v) == 384 for v in result.vectors)
    assert result.tokens > 0
    assert _cosine(result.vectors[0], result.vectors[1]) == pytest.approx(1.0)  # synonyms, in order
    assert _cosine(result.vectors[0], result.vectors[3]) < 0.5


def test_text_embedding_3_is_asked_for_the_knowledge_base_size(make_kb, llm):
    kb = make_kb(
        embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI,
        embedding_model="text-embedding-3-large",
        embedding_dim=768,
    )

    vector = embed_query(kb=kb, text="a glad puppy")

    assert len(vector) == 768
    assert llm.requests[-1]["body"]["dimensions"] == 768


def test_unsupported_size_is_refused(make_kb, llm):
    kb = make_kb(embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI, embedding_dim=512)

    with pytest.raises(EmbeddingError, match="512 is not supported"):
        embed_texts(kb=kb, texts=["x"])
    assert _embedding_calls(llm) == 0


def test_missing_openai_key_says_so(embedded_kb, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")

    with pytest.raises(EmbeddingError, match="No OpenAI key"):
        embed_texts(kb=embedded_kb, texts=["x"])


def _compatible_kb(make_kb, base_url, *, model="fake-embed", dim=384):
    return make_kb(
        embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI_COMPATIBLE,
        embedding_model=model,
        embedding_dim=dim,
        embedding_base_url=base_url,
    )


def test_compatible_endpoint_uses_the_org_key_and_no_dimensions(make_kb, acme, llm, settings):
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]
    ProviderKey.objects.create(
        organization=acme,
        provider="openai_compatible",
        encrypted_key=vault_encrypt("org-secret"),
        key_hint="…cret",
    )
    kb = _compatible_kb(make_kb, llm.base_url)

    vector = embed_query(kb=kb, text="doctor")

    request = llm.requests[-1]
    assert len(vector) == 384
    assert request["headers"]["Authorization"] == "Bearer org-secret"
    assert "dimensions" not in request["body"]


def test_compatible_endpoint_on_a_private_address_is_refused(make_kb, llm):
    kb = _compatible_kb(make_kb, llm.base_url)  # 127.0.0.1, not on OUTBOUND_ALLOW_HOSTS

    with pytest.raises(EmbeddingError, match="not allowed"):
        embed_texts(kb=kb, texts=["x"])
    assert _embedding_calls(llm) == 0


def test_wrong_vector_size_is_an_error(make_kb, llm, settings):
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]
    kb = _compatible_kb(make_kb, llm.base_url, dim=768)  # the server answers with 384 dimensions

    with pytest.raises(EmbeddingError, match="384-dimensional vectors but the knowledge base expects 768"):
        embed_texts(kb=kb, texts=["x"])


# ------------------------------------------------------------------ failures


class _Provider:
    """An embeddings endpoint that answers `statuses` in turn (then 200 with 384-dim vectors)."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.calls = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                provider.calls += 1
                status = provider.statuses.pop(0) if provider.statuses else 200
                if status == 200:
                    data = [
                        {"object": "embedding", "index": i, "embedding": [1.0] + [0.0] * 383}
                        for i in range(len(body["input"]))
                    ]
                    payload = {
                        "object": "list",
                        "data": data,
                        "model": "m",
                        "usage": {"prompt_tokens": 7, "total_tokens": 7},
                    }
                else:
                    payload = {"error": {"message": f"upstream says {status}", "type": "server_error"}}
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(monkeypatch):
    made = []

    def make(*statuses):
        stub = _Provider(statuses)
        made.append(stub)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)  # the platform URL: trusted
        return stub

    yield make
    for stub in made:
        stub.close()


@pytest.fixture
def openai_kb(make_kb):
    return make_kb(
        embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI, embedding_model="text-embedding-3-small"
    )


def test_transient_errors_are_retried(provider, openai_kb):
    stub = provider(503, 429)

    result = embed_texts(kb=openai_kb, texts=["a", "b"])

    assert stub.calls == 3
    assert len(result.vectors) == 2 and result.tokens == 7


def test_provider_down_fails_after_three_attempts_with_its_reason(provider, openai_kb):
    stub = provider(500, 502, 503, 503)

    with pytest.raises(EmbeddingError, match=r"failed after 3 attempts: HTTP 503: upstream says 503"):
        embed_texts(kb=openai_kb, texts=["a"])
    assert stub.calls == 3


def test_refusals_are_not_retried(provider, openai_kb):
    stub = provider(401)

    with pytest.raises(EmbeddingError, match="refused the request: HTTP 401: upstream says 401"):
        embed_texts(kb=openai_kb, texts=["a"])
    assert stub.calls == 1


def test_unreachable_provider_fails_with_a_reason(openai_kb, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there

    with pytest.raises(EmbeddingError, match="failed after 3 attempts: Connection error"):
        embed_texts(kb=openai_kb, texts=["a"])


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is not None, reason="local extra installed"
)
def test_local_without_the_extra_says_how_to_install(make_kb):
    kb = make_kb(
        embedding_provider=KnowledgeBase.EmbeddingProvider.LOCAL,
        embedding_model="all-MiniLM-L6-v2",
        embedding_dim=384,
    )

    with pytest.raises(EmbeddingError) as excinfo:
        embed_texts(kb=kb, texts=["hello"])
    assert str(excinfo.value) == LOCAL_INSTALL_HINT
