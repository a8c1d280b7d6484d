"""Knowledge pages: the list and create form, a knowledge base's page (upload, URL, text, documents,
retry, chunk preview), settings with re-index, the search playground, the agent's Knowledge tab; roles
and charlie, who gets a 404 for every page of Acme's."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from agents.models import Agent
from knowledge import ingest
from knowledge.models import Chunk, Document, KnowledgeBase
from tests.agents.conftest import make_agent  # noqa: F401
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}
TEXT = "# Travel\n\nHotel stays are reimbursed up to 150 euros per night.\n\n# Equipment\n\nA laptop for everyone."


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


def _ready(document: Document) -> Document:
    assert ingest.ingest(document.pk) == "ready", Document.objects.get(pk=document.pk).error
    document.refresh_from_db()
    return document


@pytest.fixture
def alice_client(client, alice, acme):
    return _login(client, alice, acme)


@pytest.fixture
def viewer_client(client, acme):
    user = UserFactory(email="vera@example.com")
    MembershipFactory(organization=acme, user=user, role=Role.VIEWER)
    return _login(client, user, acme)


# ------------------------------------------------------------------ list


def test_empty_list_explains_and_offers_the_create_form(alice_client):
    body = alice_client.get("/knowledge/").content.decode()

    assert "No knowledge bases in Acme yet." in body
    assert 'action="/knowledge/"' in body and 'name="embedding_provider"' in body


def test_create_from_the_list_goes_to_the_new_knowledge_base(alice_client, acme):
    response = alice_client.post(
        "/knowledge/",
        {
            "name": "Policies",
            "embedding_provider": "none",
            "embedding_dim": 384,
            "chunk_strategy": "recursive",
            "chunk_size": 400,
            "chunk_overlap": 50,
        },
    )

    kb = KnowledgeBase.objects.get(organization=acme, name="Policies")
    assert response.status_code == 302 and response["Location"] == f"/knowledge/{kb.pk}/"


def test_create_with_a_private_endpoint_shows_the_error_beside_the_field(alice_client):
    response = alice_client.post(
        "/knowledge/",
        {
            "name": "Local",
            "embedding_provider": "openai_compatible",
            "embedding_model": "nomic-embed-text",
            "embedding_dim": 768,
            "embedding_base_url": "http://127.0.0.1:11434/v1",
            "chunk_strategy": "recursive",
            "chunk_size": 400,
            "chunk_overlap": 50,
        },
    )

    body = response.content.decode()
    assert response.status_code == 200 and 'id="new-kb-embedding_base_url_errors"' in body
    assert not KnowledgeBase.objects.exists()


def test_list_shows_cards_with_document_counts(alice_client, kb, alice):
    _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))
    ingest.document_add_text(kb=kb, by=alice, title="More", text="Other words.")

    body = alice_client.get("/knowledge/").content.decode()

    assert f'href="/knowledge/{kb.pk}/"' in body and "Handbook" in body
    assert 'data-testid="kb-doc-count">2<' in body
    assert "Keyword only" in body


# ------------------------------------------------------------ a knowledge base


def test_page_has_uploader_forms_documents_and_the_progress_socket(alice_client, kb, alice):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))

    body = alice_client.get(f"/knowledge/{kb.pk}/").content.decode()

    assert f"uploader('/knowledge/{kb.pk}/upload/')" in body and 'type="file" name="file" multiple' in body
    assert f'ws-connect="/ws/knowledge/{kb.pk}/"' in body
    assert f'id="doc-{document.pk}-progress"' in body and 'data-status="ready"' in body
    assert f'action="/knowledge/{kb.pk}/url/"' in body and f'action="/knowledge/{kb.pk}/text/"' in body
    assert f'href="/knowledge/{kb.pk}/documents/{document.pk}/"' in body  # chunk preview


def test_keyword_only_knowledge_base_says_so_plainly(alice_client, kb, embedded_kb):
    plain = alice_client.get(f"/knowledge/{kb.pk}/").content.decode()
    embedded = alice_client.get(f"/knowledge/{embedded_kb.pk}/").content.decode()

    assert "search is keyword (full-text) only" in plain
    assert "search is keyword (full-text) only" not in embedded


def test_uploader_gets_201_for_each_file_it_posts(alice_client, kb):
    response = alice_client.post(
        f"/knowledge/{kb.pk}/upload/", {"file": SimpleUploadedFile("notes.md", TEXT.encode())}, **XHR
    )

    assert response.status_code == 201
    document = Document.objects.get(knowledge_base=kb)
    assert response.json()["documents"] == [{"id": document.pk, "title": "notes.md", "status": "pending"}]


@pytest.mark.parametrize(
    "name, data, status, words",
    [
        ("fake.pdf", b"plain text pretending", 415, "PDF"),
        ("big.txt", b"x" * 300, 413, "limit"),
    ],
)
def test_uploader_gets_the_refusal_with_its_status(alice_client, kb, settings, name, data, status, words):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 200

    response = alice_client.post(
        f"/knowledge/{kb.pk}/upload/", {"file": SimpleUploadedFile(name, data)}, **XHR
    )

    assert response.status_code == status and words in response.json()["error"]
    assert not Document.objects.exists()


def test_uploader_gets_409_for_a_duplicate(alice_client, kb, alice):
    ingest.document_add_file(kb=kb, by=alice, filename="a.md", data=TEXT.encode())

    response = alice_client.post(
        f"/knowledge/{kb.pk}/upload/", {"file": SimpleUploadedFile("b.md", TEXT.encode())}, **XHR
    )

    assert response.status_code == 409 and "already in this knowledge base" in response.json()["error"]


def test_plain_form_uploads_several_files_and_reports_refusals(alice_client, kb):
    files = [
        SimpleUploadedFile("one.txt", b"first file"),
        SimpleUploadedFile("two.txt", b"second file"),
        SimpleUploadedFile("bad.pdf", b"not a pdf"),
    ]

    response = alice_client.post(f"/knowledge/{kb.pk}/upload/", {"file": files}, follow=True)

    body = response.content.decode()
    assert sorted(Document.objects.values_list("title", flat=True)) == ["one.txt", "two.txt"]
    assert "Uploaded 2 files" in body and "bad.pdf:" in body


def test_add_url_with_htmx_resets_the_form_and_reloads_the_list(alice_client, kb):
    response = alice_client.post(
        f"/knowledge/{kb.pk}/url/", {"url": "https://example.com/faq"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert response["HX-Trigger"] == "documents-changed"
    assert 'id="url-form"' in body and "fetching it now" in body and "<html" not in body
    assert Document.objects.get().url == "https://example.com/faq"


def test_add_private_url_shows_the_reason(alice_client, kb):
    response = alice_client.post(
        f"/knowledge/{kb.pk}/url/", {"url": "http://10.0.0.5/"}, HTTP_HX_REQUEST="true"
    )

    body = response.content.decode()
    assert "HX-Trigger" not in response and 'id="id_url_errors"' in body
    assert not Document.objects.exists()


def test_paste_text(alice_client, kb):
    response = alice_client.post(f"/knowledge/{kb.pk}/text/", {"title": "Notes", "text": TEXT})

    assert response.status_code == 302
    document = Document.objects.get()
    assert (document.title, document.source) == ("Notes", "text")


def test_failed_document_shows_its_error_and_a_retry_button(alice_client, kb, alice):
    document = ingest.document_add_text(kb=kb, by=alice, title="Broken", text="words")
    Document.objects.filter(pk=document.pk).update(status="failed", error="The embedding provider was down.")

    body = alice_client.get(f"/knowledge/{kb.pk}/?status=failed").content.decode()
    assert "The embedding provider was down." in body
    assert f'hx-post="/knowledge/{kb.pk}/documents/{document.pk}/retry/"' in body

    row = alice_client.post(f"/knowledge/{kb.pk}/documents/{document.pk}/retry/", HTTP_HX_REQUEST="true")

    document.refresh_from_db()
    assert document.status == "pending" and document.error == ""
    assert (
        f'id="doc-{document.pk}"' in row.content.decode()
        and 'hx-trigger="kb-refresh, every 5s"' in row.content.decode()
    )


def test_chunk_preview_lists_the_chunks_with_their_headings(alice_client, kb, alice):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))

    body = alice_client.get(f"/knowledge/{kb.pk}/documents/{document.pk}/").content.decode()

    assert body.count('data-testid="chunk"') == Chunk.objects.filter(document=document).count() > 0
    assert "150 euros" in body and "Travel" in body


def test_stats_partial_has_the_counts(alice_client, kb, alice):
    _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))

    body = alice_client.get(f"/knowledge/{kb.pk}/stats/", HTTP_HX_REQUEST="true").content.decode()

    assert body.lstrip().startswith('<dl id="kb-stats"') and 'data-testid="stat-ready">1<' in body


def test_stats_poll_while_a_document_is_unsettled_and_stop_once_all_are(alice_client, kb, alice):
    document = ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT)  # queued, not run

    polling = alice_client.get(f"/knowledge/{kb.pk}/stats/", HTTP_HX_REQUEST="true").content.decode()
    _ready(document)
    settled = alice_client.get(f"/knowledge/{kb.pk}/stats/", HTTP_HX_REQUEST="true").content.decode()

    assert "every 3s" in polling and 'data-testid="stat-ready">0<' in polling
    assert "every 3s" not in settled and 'data-testid="stat-ready">1<' in settled


def test_delete_document(alice_client, kb, alice):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))

    response = alice_client.post(
        f"/knowledge/{kb.pk}/documents/{document.pk}/delete/", HTTP_HX_REQUEST="true"
    )

    assert response["HX-Trigger"] == "documents-changed"
    assert not Document.objects.exists() and not Chunk.objects.exists()


# ------------------------------------------------------------ settings


def test_settings_change_reindexes(alice_client, kb, alice):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))
    data = {
        "name": kb.name,
        "embedding_provider": "none",
        "embedding_dim": 384,
        "chunk_strategy": "fixed",
        "chunk_size": 100,
        "chunk_overlap": 10,
    }

    response = alice_client.post(f"/knowledge/{kb.pk}/settings/", data, follow=True)

    assert "re-indexed with the new settings" in response.content.decode()
    kb.refresh_from_db()
    document.refresh_from_db()
    assert (kb.chunk_strategy, kb.chunk_size) == ("fixed", 100) and document.status == "pending"


def test_settings_page_says_keyword_only_and_offers_reindex(alice_client, kb):
    body = alice_client.get(f"/knowledge/{kb.pk}/settings/").content.decode()

    assert "Embeddings are off: search is keyword (full-text) only." in body
    assert f'action="/knowledge/{kb.pk}/reindex/"' in body


def test_reindex_and_delete_buttons(alice_client, kb, alice):
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))

    alice_client.post(f"/knowledge/{kb.pk}/reindex/")
    document.refresh_from_db()
    assert document.status == "pending"

    response = alice_client.post(f"/knowledge/{kb.pk}/delete/")
    assert response["Location"] == "/knowledge/" and not KnowledgeBase.objects.exists()


# ------------------------------------------------------------ playground


def test_playground_shows_ranks_side_by_side(alice_client, embedded_kb, alice):
    _ready(ingest.document_add_text(kb=embedded_kb, by=alice, title="Notes", text=TEXT))

    body = alice_client.get(
        f"/knowledge/search/?q=hotel+euros&mode=hybrid&kb={embedded_kb.pk}&top_k=5"
    ).content.decode()

    assert 'data-testid="search-results"' in body
    assert ">Fused</th>" in body and ">Vector</th>" in body and ">Keyword</th>" in body
    assert 'data-testid="rank-fused">#1<' in body and "150 euros" in body


def test_playground_notes_keyword_only_bases(alice_client, kb, alice):
    _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))

    response = alice_client.get("/knowledge/search/?q=laptop&mode=hybrid", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert "<html" not in body and 'id="results"' in body
    assert "Handbook has no embeddings" in body and "A laptop for everyone." in body


def test_playground_without_a_query_preselects_the_linked_base(alice_client, kb):
    body = alice_client.get(f"/knowledge/search/?kb={kb.pk}").content.decode()

    assert f'value="{kb.pk}" checked' in body and 'data-testid="search-results"' not in body


# ------------------------------------------------------------ agent tab


def test_agent_tab_lists_attached_bases_and_attaches_another(alice_client, kb, make_kb, make_agent, llm):  # noqa: F811
    other = make_kb(name="Pricing")
    agent = make_agent(name="Reader", knowledge={"knowledge_base_ids": [kb.pk]})

    body = alice_client.get(f"/agents/{agent.pk}/knowledge/").content.decode()
    assert f'href="/knowledge/{kb.pk}/"' in body and "Handbook" in body
    assert f'<option value="{other.pk}">Pricing' in body

    response = alice_client.post(
        f"/knowledge/agents/{agent.pk}/attach/", {"knowledge_base": other.pk}, follow=True
    )

    agent = Agent.objects.get(pk=agent.pk)
    assert agent.published_version.config["knowledge"]["knowledge_base_ids"] == [kb.pk, other.pk]
    assert "uses it from the next message" in response.content.decode()


def test_agent_tab_detaches(alice_client, kb, make_agent, llm):  # noqa: F811
    agent = make_agent(name="Reader", knowledge={"knowledge_base_ids": [kb.pk]})

    alice_client.post(f"/knowledge/agents/{agent.pk}/detach/{kb.pk}/")

    agent = Agent.objects.get(pk=agent.pk)
    assert agent.published_version.config["knowledge"]["knowledge_base_ids"] == []


def test_cannot_attach_another_orgs_base(alice_client, make_kb, charlie_org, make_agent, llm):  # noqa: F811
    theirs = make_kb(org=charlie_org, name="Secret")
    agent = make_agent()

    alice_client.post(f"/knowledge/agents/{agent.pk}/attach/", {"knowledge_base": theirs.pk})

    assert Agent.objects.get(pk=agent.pk).versions.count() == 1


# ------------------------------------------------------------ roles


def test_viewer_sees_documents_but_no_upload(viewer_client, kb):
    body = viewer_client.get(f"/knowledge/{kb.pk}/").content.decode()

    assert (
        "uploader(" not in body
        and 'action="/knowledge/"' not in viewer_client.get("/knowledge/").content.decode()
    )
    response = viewer_client.post(
        f"/knowledge/{kb.pk}/upload/", {"file": SimpleUploadedFile("a.txt", b"x")}, **XHR
    )
    assert response.status_code == 403 and not Document.objects.exists()


@pytest.fixture
def acme_ids(kb, alice, make_agent, llm):  # noqa: F811
    document = _ready(ingest.document_add_text(kb=kb, by=alice, title="Notes", text=TEXT))
    return {
        "kb": kb.pk,
        "doc": document.pk,
        "chunk": Chunk.objects.filter(document=document).first().pk,
        "agent": make_agent().pk,
    }


PAGES = [
    ("get", "/knowledge/{kb}/"),
    ("get", "/knowledge/{kb}/settings/"),
    ("post", "/knowledge/{kb}/settings/"),
    ("post", "/knowledge/{kb}/reindex/"),
    ("post", "/knowledge/{kb}/delete/"),
    ("post", "/knowledge/{kb}/upload/"),
    ("post", "/knowledge/{kb}/url/"),
    ("post", "/knowledge/{kb}/text/"),
    ("get", "/knowledge/{kb}/stats/"),
    ("get", "/knowledge/{kb}/documents/"),
    ("get", "/knowledge/{kb}/documents/{doc}/"),
    ("get", "/knowledge/{kb}/documents/{doc}/row/"),
    ("post", "/knowledge/{kb}/documents/{doc}/retry/"),
    ("post", "/knowledge/{kb}/documents/{doc}/delete/"),
    ("get", "/knowledge/chunks/{chunk}/"),
    ("post", "/knowledge/agents/{agent}/attach/"),
    ("post", "/knowledge/agents/{agent}/detach/{kb}/"),
]


@pytest.mark.parametrize("method, path", PAGES, ids=[f"{m} {p}" for m, p in PAGES])
def test_charlie_gets_404_for_every_acme_page(client, acme_ids, charlie, charlie_org, method, path):
    response = getattr(_login(client, charlie, charlie_org), method)(path.format(**acme_ids))

    assert response.status_code == 404
    assert KnowledgeBase.objects.get(pk=acme_ids["kb"]).documents.count() == 1


def test_charlie_list_and_playground_show_nothing_of_acme(client, acme_ids, charlie, charlie_org):
    _login(client, charlie, charlie_org)

    assert "Handbook" not in client.get("/knowledge/").content.decode()
    assert "Handbook" not in client.get("/knowledge/search/?q=hotel").content.decode()
