"""The knowledge REST API: knowledge bases, their documents, search, the files of doc 001 §4.5 and an
agent's files. Bad input (413/415/409), roles, and charlie, who gets a 404 for every one of Acme's ids."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from agents.models import Agent
from knowledge import ingest
from knowledge.models import Chunk, Document, KnowledgeBase
from tests.agents.conftest import make_agent  # noqa: F401
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import as_user, assert_envelope

pytestmark = pytest.mark.django_db

API = "/api/v1/"
HANDBOOK = (
    "# Travel policy\n\nEmployees book economy class for flights under six hours. "
    "Hotel stays are reimbursed up to 150 euros per night.\n\n"
    "# Equipment\n\nEvery new hire receives a laptop and a second monitor on the first day."
)


def _upload(client, path, name, data, **extra):
    return client.post(API + path, {"file": SimpleUploadedFile(name, data), **extra}, format="multipart")


def _ready(document: Document) -> Document:
    """Run the ingestion pipeline now, in this process (the task would do the same on a worker)."""
    assert ingest.ingest(document.pk) == "ready", Document.objects.get(pk=document.pk).error
    document.refresh_from_db()
    return document


@pytest.fixture
def viewer(acme):
    user = UserFactory(email="vera@example.com")
    MembershipFactory(organization=acme, user=user, role=Role.VIEWER)
    return user


# ------------------------------------------------------------ knowledge bases


def test_create_list_and_get_knowledge_base_with_counts(alice_api, kb, alice):
    response = alice_api.post(
        API + "knowledge-bases/",
        {"name": "Policies", "embedding_provider": "none", "chunk_strategy": "markdown", "chunk_size": 300},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Policies" and body["embedding_provider"] == "none"
    assert (body["chunk_strategy"], body["chunk_size"], body["chunk_overlap"]) == ("markdown", 300, 50)
    assert body["search_modes"] == ["keyword"] and body["document_count"] == 0
    _ready(ingest.document_add_text(kb=kb, by=alice, title="Handbook", text=HANDBOOK))
    listed = alice_api.get(API + "knowledge-bases/").json()
    assert [r["name"] for r in listed["results"]] == ["Handbook", "Policies"]
    one = alice_api.get(API + f"knowledge-bases/{kb.pk}").json()
    assert (one["document_count"], one["ready_count"], one["failed_count"]) == (1, 1, 0)
    assert one["chunk_count"] == Chunk.objects.filter(knowledge_base=kb).count() > 0


def test_create_defaults_to_openai_embeddings_when_a_key_is_set(alice_api, llm):
    body = alice_api.post(API + "knowledge-bases/", {"name": "Docs"}, format="json").json()

    assert (body["embedding_provider"], body["embedding_model"], body["embedding_dim"]) == (
        "openai",
        "text-embedding-3-small",
        1536,
    )
    assert body["search_modes"] == ["hybrid", "vector", "keyword"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"embedding_provider": "openai", "embedding_dim": 3072}, "embedding_dim"),
        (
            {"embedding_provider": "local", "embedding_model": "all-MiniLM-L6-v2", "embedding_dim": 768},
            "embedding_dim",
        ),
        ({"embedding_provider": "openai_compatible", "embedding_model": "nomic"}, "embedding_base_url"),
        (
            {
                "embedding_provider": "openai_compatible",
                "embedding_model": "m",
                "embedding_base_url": "http://127.0.0.1:11434/v1",
            },
            "embedding_base_url",
        ),
        ({"chunk_size": 100, "chunk_overlap": 80}, "chunk_overlap"),
    ],
)
def test_create_refuses_settings_that_do_not_fit(alice_api, payload, field):
    response = alice_api.post(API + "knowledge-bases/", {"name": "X", **payload}, format="json")

    body = assert_envelope(response, 400, response.json()["error_code"])
    assert field in body["field_errors"]
    assert not KnowledgeBase.objects.exists()


def test_changing_chunking_reindexes_every_document(alice_api, kb, alice, django_capture_on_commit_callbacks):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Handbook", text=HANDBOOK))

    with django_capture_on_commit_callbacks() as callbacks:
        response = alice_api.patch(API + f"knowledge-bases/{kb.pk}", {"chunk_size": 120}, format="json")

    assert response.status_code == 200 and response.json()["chunk_size"] == 120
    document.refresh_from_db()
    assert document.status == Document.Status.PENDING and len(callbacks) == 1


def test_renaming_does_not_reindex(alice_api, kb, alice):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Handbook", text=HANDBOOK))

    alice_api.patch(API + f"knowledge-bases/{kb.pk}", {"name": "Company handbook"}, format="json")

    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert KnowledgeBase.objects.get(pk=kb.pk).name == "Company handbook"


def test_delete_knowledge_base_removes_documents_chunks_and_files(
    alice_api, kb, alice, media, django_capture_on_commit_callbacks
):
    document = _ready(ingest.document_add_file(kb=kb, by=alice, filename="a.md", data=HANDBOOK.encode()))
    stored = media / document.file.name
    assert stored.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice_api.delete(API + f"knowledge-bases/{kb.pk}")

    assert response.status_code == 204
    assert not KnowledgeBase.objects.filter(pk=kb.pk).exists()
    assert not Chunk.objects.exists() and not stored.exists()


def test_reindex_endpoint_queues_every_document(alice_api, kb, alice):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Handbook", text=HANDBOOK))

    response = alice_api.post(API + f"knowledge-bases/{kb.pk}/reindex")

    assert response.status_code == 202 and response.json()["id"] == kb.pk
    document.refresh_from_db()
    assert document.status == Document.Status.PENDING


# ------------------------------------------------------------ documents


def test_upload_list_get_with_chunks_and_delete_a_document(alice_api, kb, media):
    response = _upload(alice_api, f"knowledge-bases/{kb.pk}/documents/", "handbook.md", HANDBOOK.encode())

    assert response.status_code == 202, response.content
    created = response.json()
    assert (created["title"], created["status"], created["mime_type"]) == (
        "handbook.md",
        "pending",
        "text/markdown",
    )
    _ready(Document.objects.get(pk=created["id"]))
    listed = alice_api.get(API + f"knowledge-bases/{kb.pk}/documents/?status=ready").json()
    assert [d["id"] for d in listed["results"]] == [created["id"]]
    assert alice_api.get(API + f"knowledge-bases/{kb.pk}/documents/?status=failed").json()["count"] == 0
    detail = alice_api.get(API + f"knowledge-bases/{kb.pk}/documents/{created['id']}?chunks=1").json()
    assert detail["status"] == "ready" and detail["chunk_count"] == len(detail["chunks"]) > 0
    assert detail["chunks"][0]["heading_path"] == ["Travel policy"]
    assert "chunks" not in alice_api.get(API + f"knowledge-bases/{kb.pk}/documents/{created['id']}").json()

    assert alice_api.delete(API + f"knowledge-bases/{kb.pk}/documents/{created['id']}").status_code == 204
    assert not Document.objects.exists() and not Chunk.objects.exists()


def test_add_pasted_text_and_url(alice_api, kb):
    text = alice_api.post(
        API + f"knowledge-bases/{kb.pk}/documents/",
        {"title": "Notes", "text": "Remember the milk."},
        format="json",
    )
    url = alice_api.post(
        API + f"knowledge-bases/{kb.pk}/documents/", {"url": "https://example.com/guide"}, format="json"
    )

    assert text.status_code == 202 and text.json()["source"] == "text"
    assert url.status_code == 202 and (url.json()["source"], url.json()["url"]) == (
        "url",
        "https://example.com/guide",
    )


def test_private_url_is_refused(alice_api, kb):
    response = alice_api.post(
        API + f"knowledge-bases/{kb.pk}/documents/", {"url": "http://127.0.0.1:8000/admin"}, format="json"
    )

    assert_envelope(response, 400, "unsafe_url")
    assert not Document.objects.exists()


def test_document_input_needs_exactly_one_source(alice_api, kb):
    response = alice_api.post(
        API + f"knowledge-bases/{kb.pk}/documents/",
        {"url": "https://example.com", "text": "x"},
        format="json",
    )

    assert_envelope(response, 400, "invalid")


def test_mismatched_type_is_415_and_nothing_is_stored(alice_api, kb, media):
    response = _upload(
        alice_api, f"knowledge-bases/{kb.pk}/documents/", "report.pdf", b"just some text, not a PDF"
    )

    body = assert_envelope(response, 415, "unsupported_type")
    assert "PDF" in body["detail"]
    assert not Document.objects.exists()
    assert not [p for p in media.rglob("*") if p.is_file()] if media.exists() else True


def test_binary_of_unknown_type_is_415(alice_api, kb):
    response = _upload(alice_api, f"knowledge-bases/{kb.pk}/documents/", "blob.bin", bytes(range(256)) * 4)

    assert_envelope(response, 415, "unsupported_type")


def test_file_over_the_limit_is_413_and_nothing_is_stored(alice_api, kb, media, settings):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 100

    response = _upload(alice_api, f"knowledge-bases/{kb.pk}/documents/", "big.txt", b"word " * 100)

    body = assert_envelope(response, 413, "too_large")
    assert "limit" in body["detail"]
    assert not Document.objects.exists()
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]


def test_same_file_twice_is_409(alice_api, kb):
    first = _upload(alice_api, f"knowledge-bases/{kb.pk}/documents/", "a.md", HANDBOOK.encode())
    again = _upload(alice_api, f"knowledge-bases/{kb.pk}/documents/", "copy.md", HANDBOOK.encode())

    assert first.status_code == 202
    body = assert_envelope(again, 409, "duplicate")
    assert "a.md" in body["detail"]
    assert Document.objects.count() == 1


def test_retry_a_failed_document_and_refuse_others(alice_api, kb, alice):
    document = ingest.document_add_text(kb=kb, by=alice, title="Broken", text="text")
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.FAILED, error="The provider was down."
    )

    retried = alice_api.post(API + f"knowledge-bases/{kb.pk}/documents/{document.pk}/retry")

    assert (
        retried.status_code == 202 and retried.json()["status"] == "pending" and retried.json()["error"] == ""
    )
    assert_envelope(
        alice_api.post(API + f"knowledge-bases/{kb.pk}/documents/{document.pk}/retry"), 409, "not_failed"
    )


# --------------------------------------------------------------- search


def test_hybrid_search_returns_hits_with_document_page_score_and_ranks(alice_api, embedded_kb, alice):
    _ready(ingest.document_add_text(kb=embedded_kb, by=alice, title="Handbook", text=HANDBOOK))
    _ready(
        ingest.document_add_text(kb=embedded_kb, by=alice, title="Menu", text="Lunch is pasta on Fridays.")
    )

    response = alice_api.post(
        API + "knowledge/search",
        {"query": "hotel reimbursed per night", "knowledge_base_ids": [embedded_kb.pk], "top_k": 3},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["mode"] == "hybrid" and body["knowledge_base_ids"] == [embedded_kb.pk]
    top = body["hits"][0]
    assert top["document_title"] == "Handbook" and "150 euros" in top["text"]
    assert set(top) >= {"chunk_id", "document_id", "page", "heading_path", "score", "ranks"}
    assert top["ranks"]["fused"] == 1 and top["ranks"]["keyword"] == 1 and top["ranks"]["vector"] is not None


def test_keyword_search_without_kb_ids_searches_the_whole_org(alice_api, kb, alice):
    _ready(ingest.document_add_text(kb=kb, by=alice, title="Handbook", text=HANDBOOK))

    body = alice_api.post(
        API + "knowledge/search", {"query": "laptop", "mode": "keyword"}, format="json"
    ).json()

    assert [h["document_title"] for h in body["hits"]] == ["Handbook"]
    assert body["hits"][0]["ranks"] == {"vector": None, "keyword": 1, "fused": 1}


def test_search_refuses_a_bad_filter(alice_api, kb):
    response = alice_api.post(
        API + "knowledge/search", {"query": "x", "filters": {"page": {"near": 3}}}, format="json"
    )

    body = assert_envelope(response, 400, "invalid")
    assert "filters" in body["field_errors"]


# ---------------------------------------------------------------- files


def test_upload_without_a_knowledge_base_goes_to_uploads(alice_api, acme):
    response = _upload(alice_api, "files/upload", "notes.txt", b"Quarterly numbers are up.")

    assert response.status_code == 201, response.content
    body = response.json()
    uploads = KnowledgeBase.objects.get(organization=acme, name="Uploads")
    assert (body["filename"], body["knowledge_base_id"], body["knowledge_base_name"]) == (
        "notes.txt",
        uploads.pk,
        "Uploads",
    )
    second = _upload(alice_api, "files/upload", "more.txt", b"Another file.").json()
    assert second["knowledge_base_id"] == uploads.pk
    assert KnowledgeBase.objects.filter(organization=acme).count() == 1


def test_files_list_get_and_delete(alice_api, kb, alice):
    ingest.document_add_text(kb=kb, by=alice, title="Pasted", text="not a file")
    uploaded = _upload(alice_api, "files/upload", "a.md", HANDBOOK.encode(), knowledge_base_id=kb.pk).json()

    listed = alice_api.get(API + "files/").json()
    assert [f["id"] for f in listed["results"]] == [uploaded["id"]]  # pasted text is not a file
    assert alice_api.get(API + f"files/?knowledge_base_id={kb.pk}").json()["count"] == 1
    assert alice_api.get(API + f"files/{uploaded['id']}").json()["knowledge_base_id"] == kb.pk
    assert alice_api.delete(API + f"files/{uploaded['id']}").status_code == 204
    assert_envelope(alice_api.get(API + f"files/{uploaded['id']}"), 404, "not_found")


def test_files_upload_refuses_bad_input_like_documents(alice_api, kb, settings):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 50
    assert_envelope(_upload(alice_api, "files/upload", "x.docx", b"plain text"), 415, "unsupported_type")
    assert_envelope(_upload(alice_api, "files/upload", "x.txt", b"y" * 51), 413, "too_large")
    assert not Document.objects.exists()


def test_attach_a_file_to_an_agent_list_and_detach(alice_api, kb, make_agent, llm):  # noqa: F811
    agent = make_agent()
    file = _upload(alice_api, "files/upload", "a.md", HANDBOOK.encode(), knowledge_base_id=kb.pk).json()

    attached = alice_api.post(API + f"agents/{agent.pk}/files", {"file_id": file["id"]}, format="json")

    assert attached.status_code == 201, attached.content
    body = attached.json()
    assert body["version"] == 2 and body["knowledge_base_ids"] == [kb.pk] and body["file"]["id"] == file["id"]
    agent = Agent.objects.get(pk=agent.pk)
    assert agent.latest_version().config["knowledge"]["knowledge_base_ids"] == [kb.pk]
    assert agent.published_version.number == 1  # a draft: publishing is the caller's choice
    listed = alice_api.get(API + f"agents/{agent.pk}/files").json()
    assert [f["id"] for f in listed["results"]] == [file["id"]]
    again = alice_api.post(API + f"agents/{agent.pk}/files", {"file_id": file["id"]}, format="json").json()
    assert again["version"] == 2  # already attached: no new version

    assert alice_api.delete(API + f"agents/{agent.pk}/files/{file['id']}").status_code == 204
    assert agent.latest_version().config["knowledge"]["knowledge_base_ids"] == []
    assert_envelope(alice_api.delete(API + f"agents/{agent.pk}/files/{file['id']}"), 404, "not_found")


def test_attach_with_publish_makes_runs_use_it(alice_api, kb, make_agent, llm):  # noqa: F811
    agent = make_agent()
    file = _upload(alice_api, "files/upload", "a.md", HANDBOOK.encode(), knowledge_base_id=kb.pk).json()

    alice_api.post(API + f"agents/{agent.pk}/files", {"file_id": file["id"], "publish": True}, format="json")

    agent = Agent.objects.get(pk=agent.pk)
    assert agent.published_version.config["knowledge"]["knowledge_base_ids"] == [kb.pk]


# -------------------------------------------------------------- roles


def test_viewer_can_read_and_search_but_not_write(viewer, kb):
    client = as_user(viewer)

    assert client.get(API + f"knowledge-bases/{kb.pk}").status_code == 200
    assert client.post(API + "knowledge/search", {"query": "x"}, format="json").status_code == 200
    assert_envelope(
        client.post(API + "knowledge-bases/", {"name": "x"}, format="json"), 403, "permission_denied"
    )
    assert_envelope(
        client.patch(API + f"knowledge-bases/{kb.pk}", {"name": "x"}, format="json"), 403, "permission_denied"
    )
    assert_envelope(_upload(client, "files/upload", "a.txt", b"hello"), 403, "permission_denied")
    assert_envelope(client.post(API + f"knowledge-bases/{kb.pk}/reindex"), 403, "permission_denied")
    assert not Document.objects.exists()


# ------------------------------------------------------------ isolation


@pytest.fixture
def acme_world(kb, alice, make_agent, llm):  # noqa: F811
    document = ingest.document_add_file(kb=kb, by=alice, filename="a.md", data=HANDBOOK.encode())
    agent = make_agent()
    return {"kb": kb.pk, "doc": document.pk, "agent": agent.pk}


ISOLATION = [
    ("get", "knowledge-bases/{kb}", None),
    ("patch", "knowledge-bases/{kb}", {"name": "mine"}),
    ("delete", "knowledge-bases/{kb}", None),
    ("post", "knowledge-bases/{kb}/reindex", None),
    ("get", "knowledge-bases/{kb}/documents/", None),
    ("post", "knowledge-bases/{kb}/documents/", {"title": "t", "text": "x"}),
    ("get", "knowledge-bases/{kb}/documents/{doc}", None),
    ("delete", "knowledge-bases/{kb}/documents/{doc}", None),
    ("post", "knowledge-bases/{kb}/documents/{doc}/retry", None),
    ("post", "knowledge/search", {"query": "travel", "knowledge_base_ids": ["{kb}"]}),
    ("get", "files/{doc}", None),
    ("delete", "files/{doc}", None),
    ("get", "files/?knowledge_base_id={kb}", None),
    ("post", "files/upload", "upload-into-{kb}"),
    ("get", "agents/{agent}/files", None),
    ("post", "agents/{agent}/files", {"file_id": "{doc}"}),
    ("delete", "agents/{agent}/files/{doc}", None),
]


def _fill(value, world):
    if isinstance(value, str):
        filled = value.format(**world)
        return int(filled) if filled.isdigit() else filled
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


@pytest.mark.parametrize("method, path, body", ISOLATION, ids=[f"{m} {p}" for m, p, _ in ISOLATION])
def test_charlie_gets_404_for_every_acme_id(acme_world, charlie, charlie_org, method, path, body):
    client = as_user(charlie)
    url = API + path.format(**acme_world)

    if body and isinstance(body, str):  # a multipart upload into Acme's knowledge base
        response = _upload(client, "files/upload", "c.txt", b"charlie's", knowledge_base_id=acme_world["kb"])
    else:
        response = getattr(client, method)(url, _fill(body, acme_world), format="json")

    assert_envelope(response, 404, "not_found")
    assert Document.objects.filter(organization=charlie_org).count() == 0
    kb = KnowledgeBase.objects.get(pk=acme_world["kb"])
    assert kb.name == "Handbook" and kb.documents.count() == 1
    assert Agent.objects.get(pk=acme_world["agent"]).versions.count() == 1


def test_charlie_lists_see_nothing_of_acme(acme_world, charlie, charlie_org):
    client = as_user(charlie)

    assert client.get(API + "knowledge-bases/").json()["count"] == 0
    assert client.get(API + "files/").json()["count"] == 0
    assert client.post(API + "knowledge/search", {"query": "travel"}, format="json").json()["hits"] == []
