"""Adding documents (checks, storage, dedupe), the pipeline through a real Celery worker, and
progress over the websocket."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.storage import default_storage

from accounts.services import ServiceError
from config.asgi import application
from knowledge import ingest
from knowledge.models import Chunk, Document, KnowledgeBase
from tests.conftest import wait_for
from tests.helpers import session_ws_headers
from tests.knowledge.conftest import docx_bytes, pdf_bytes, pptx_bytes, xlsx_bytes

Status = Document.Status


def _stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()] if media.exists() else []


def _settled(document: Document, timeout: float = 20) -> Document:
    def done():
        document.refresh_from_db()
        return document.status in (Status.READY, Status.FAILED)

    wait_for(done, timeout=timeout)
    return document


# ------------------------------------------------------------------ adding


def test_add_file_stores_it_and_queues_ingestion_on_commit(
    kb, alice, media, django_capture_on_commit_callbacks
):
    data = b"# Title\nSome words."
    with django_capture_on_commit_callbacks() as callbacks:
        document = ingest.document_add_file(kb=kb, by=alice, filename="../notes.md", data=data)

    assert len(callbacks) == 1
    assert (document.status, document.title, document.mime_type) == (
        Status.PENDING,
        "notes.md",
        "text/markdown",
    )
    assert (document.sha256, document.size_bytes, document.organization_id) == (
        Document.digest(data),
        len(data),
        kb.organization_id,
    )
    assert document.file.name.startswith("knowledge/") and document.file.name.endswith("-notes.md")
    assert default_storage.open(document.file.name).read() == data
    assert _stored_files(media) == [media / document.file.name]


def test_duplicate_in_the_same_knowledge_base_is_409_and_nothing_stored(kb, make_kb, alice, media):
    ingest.document_add_file(kb=kb, by=alice, filename="a.txt", data=b"same bytes")

    with pytest.raises(ServiceError, match="already in this knowledge base") as caught:
        ingest.document_add_file(kb=kb, by=alice, filename="b.txt", data=b"same bytes")

    assert caught.value.status == 409
    assert Document.objects.count() == 1 and len(_stored_files(media)) == 1
    # Another knowledge base may hold the same file.
    ingest.document_add_file(kb=make_kb(name="Other"), by=alice, filename="a.txt", data=b"same bytes")
    assert len(_stored_files(media)) == 2


def test_file_over_the_size_limit_is_413_and_nothing_stored(kb, alice, media, settings):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 1000

    with pytest.raises(
        ServiceError, match="“big.txt” is 1001 bytes; the limit is 1000 bytes per file"
    ) as caught:
        ingest.document_add_file(kb=kb, by=alice, filename="big.txt", data=b"x" * 1001)

    assert caught.value.status == 413
    assert not Document.objects.exists() and _stored_files(media) == []


def test_organization_over_its_quota_is_413_and_nothing_stored(
    kb, make_kb, alice, charlie_org, media, settings
):
    settings.KNOWLEDGE_MAX_ORG_BYTES = 100
    ingest.document_add_file(kb=kb, by=alice, filename="a.txt", data=b"a" * 60)

    with pytest.raises(ServiceError, match="limit is 100 bytes") as caught:
        ingest.document_add_file(kb=make_kb(name="Second"), by=alice, filename="b.txt", data=b"b" * 41)

    assert caught.value.status == 413
    assert Document.objects.count() == 1 and len(_stored_files(media)) == 1
    # The quota is per organization: charlie's is untouched by acme's documents.
    charlie_kb = make_kb(org=charlie_org)
    ingest.document_add_file(kb=charlie_kb, by=None, filename="c.txt", data=b"c" * 60)


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("report.pdf", docx_bytes([(0, "x")]), "named .pdf but its content is Word"),
        ("notes.docx", b"plain words", "content is plain text"),
        ("logo.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "Unsupported file type: image/png"),
    ],
)
def test_unsupported_or_mismatched_type_is_415_and_nothing_stored(kb, alice, media, filename, data, message):
    with pytest.raises(ServiceError, match=message) as caught:
        ingest.document_add_file(kb=kb, by=alice, filename=filename, data=data)

    assert caught.value.status == 415
    assert not Document.objects.exists() and _stored_files(media) == []


def test_pasted_text_is_stored_as_markdown_and_blank_text_is_refused(kb, alice):
    document = ingest.document_add_text(kb=kb, by=alice, title="Meeting notes", text="# Agenda\nBudget")

    assert (document.source, document.title, document.mime_type) == ("text", "Meeting notes", "text/markdown")
    assert default_storage.open(document.file.name).read() == b"# Agenda\nBudget"
    with pytest.raises(ServiceError, match="empty"):
        ingest.document_add_text(kb=kb, by=alice, title="x", text="  \n")


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3/doc", "http://127.0.0.1:8000/", "http://169.254.169.254/latest"]
)
def test_a_private_url_is_refused_when_added(kb, alice, url):
    with pytest.raises(ServiceError) as caught:
        ingest.document_add_url(kb=kb, by=alice, url=url)

    assert (caught.value.status, caught.value.code) == (400, "unsafe_url")
    assert "Refusing to connect" in str(caught.value)
    assert not Document.objects.exists()


def test_only_failed_documents_can_be_retried(kb, alice):
    document = ingest.document_add_text(kb=kb, by=alice, title="t", text="words")

    with pytest.raises(ServiceError) as caught:
        ingest.document_retry(document=document)
    assert caught.value.status == 409

    Document.objects.filter(pk=document.pk).update(status=Status.FAILED, error="boom", progress=40)
    document = ingest.document_retry(document=document)
    assert (document.status, document.error, document.progress) == (Status.PENDING, "", 0)


def test_delete_removes_chunks_and_the_stored_file(kb, alice, media, django_capture_on_commit_callbacks):
    document = ingest.document_add_text(kb=kb, by=alice, title="t", text="Alpha beta.\n\nGamma delta.")
    assert ingest.ingest(document.pk) == "ready"
    assert Chunk.objects.filter(document=document).exists()

    with django_capture_on_commit_callbacks(execute=True):
        ingest.document_delete(document=document)

    assert not Chunk.objects.exists() and not Document.objects.exists()
    assert _stored_files(media) == []


def test_a_claimed_document_is_not_ingested_twice(kb, alice):
    document = ingest.document_add_text(kb=kb, by=alice, title="t", text="words here")

    assert ingest.ingest(document.pk) == "ready"
    assert ingest.ingest(document.pk) == "skipped"
    assert ingest.ingest(999_999) == "skipped"
    assert Chunk.objects.filter(document=document).count() == 1


# ------------------------------------------------------------------ the pipeline, through a real worker


def test_pdf_is_ingested_with_384_dim_vectors(embedded_kb, alice, celery_worker):
    data = pdf_bytes(["Refunds are accepted within thirty days.", "Shipping is free above fifty euros."])

    document = _settled(ingest.document_add_file(kb=embedded_kb, by=alice, filename="terms.pdf", data=data))

    assert (document.status, document.progress, document.error) == (Status.READY, 100, "")
    assert (document.pages, document.chunk_count) == (2, 2)
    assert document.embedding_tokens > 0
    chunks = list(document.chunks.order_by("ordinal"))
    assert [(c.ordinal, c.metadata["page"], c.metadata["source"]) for c in chunks] == [
        (0, 1, "terms.pdf"),
        (1, 2, "terms.pdf"),
    ]
    assert all(c.embedding_dim == 384 and len(c.embedding) == 384 for c in chunks)
    assert all(
        c.knowledge_base_id == embedded_kb.pk and c.organization_id == embedded_kb.organization_id
        for c in chunks
    )
    assert "Refunds" in chunks[0].text


def test_every_format_reaches_ready(kb, alice, celery_worker):
    files = {
        "a.pdf": pdf_bytes(["pdf words"]),
        "b.docx": docx_bytes([(1, "Docx heading"), (0, "docx words")]),
        "c.pptx": pptx_bytes([("Slide", "pptx words")]),
        "d.xlsx": xlsx_bytes({"Sheet": [["xlsx", "words"]]}),
        "e.csv": b"csv,words\n1,2\n",
        "f.html": b"<html><body><h1>Html</h1><p>html words</p></body></html>",
        "g.md": b"# Md\nmd words",
        "h.txt": b"txt words",
        "i.json": b'{"json": "words"}',
    }
    documents = [ingest.document_add_file(kb=kb, by=alice, filename=n, data=d) for n, d in files.items()]

    settled = [_settled(d) for d in documents]

    assert [(d.title, d.status, d.error) for d in settled] == [(n, Status.READY, "") for n in files]
    assert Chunk.objects.filter(knowledge_base=kb).count() >= len(files)
    assert Chunk.objects.get(document=settled[1]).metadata["heading_path"] == ["Docx heading"]


def test_corrupt_and_encrypted_pdfs_fail_and_the_next_document_still_succeeds(kb, alice, celery_worker):
    corrupt = ingest.document_add_file(kb=kb, by=alice, filename="broken.pdf", data=pdf_bytes(["x"])[:300])
    locked = ingest.document_add_file(
        kb=kb, by=alice, filename="locked.pdf", data=pdf_bytes(["x"], user_password="pw")
    )
    blank = ingest.document_add_file(kb=kb, by=alice, filename="blank.pdf", data=pdf_bytes([""]))
    good = ingest.document_add_text(kb=kb, by=alice, title="fine", text="Still works.")

    for document in (corrupt, locked, blank, good):
        _settled(document)

    assert (corrupt.status, locked.status, blank.status) == (Status.FAILED,) * 3
    assert "corrupt" in corrupt.error
    assert "encrypted" in locked.error
    assert blank.error == "no text found"
    assert (good.status, good.chunk_count) == (Status.READY, 1)
    assert not Chunk.objects.filter(document__in=[corrupt, locked, blank]).exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_vector_provider_down_fails_with_its_reason_then_retry_succeeds(
    make_kb, alice, llm, settings, celery_worker
):
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]
    settings.EMBEDDING_RETRY_BACKOFF_SECONDS = 0.01
    kb = make_kb(
        embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI_COMPATIBLE,
        embedding_model="fake-embed",
        embedding_base_url=f"http://127.0.0.1:{_closed_port()}/v1",
    )

    document = _settled(ingest.document_add_text(kb=kb, by=alice, title="t", text="Some text to embed."))

    assert document.status == Status.FAILED
    assert "embedding provider failed after" in document.error
    KnowledgeBase.objects.filter(pk=kb.pk).update(embedding_base_url=llm.base_url)
    ingest.document_retry(document=document)
    assert _settled(document).status == Status.READY
    assert document.chunks.get().embedding_dim == 384


def test_reindex_rechunks_every_document_after_a_settings_change(kb, alice, celery_worker):
    text = "\n\n".join(f"Paragraph {i} has a handful of words in it." for i in range(10))
    document = _settled(ingest.document_add_text(kb=kb, by=alice, title="long", text=text))
    assert document.chunk_count == 1

    KnowledgeBase.objects.filter(pk=kb.pk).update(chunk_size=30, chunk_overlap=0)
    kb.refresh_from_db()
    assert ingest.knowledge_base_reindex(kb=kb) == 1

    wait_for(lambda: Document.objects.get(pk=document.pk).chunk_count > 1)
    document = _settled(document)
    assert document.status == Status.READY
    assert document.chunks.count() == document.chunk_count
    assert max(document.chunks.values_list("token_count", flat=True)) <= 30


# ------------------------------------------------------------------ URLs


class _Site(BaseHTTPRequestHandler):
    pages = {
        "/guide": (
            "text/html; charset=utf-8",
            b"<html><body><h1>Guide</h1><p>Fetched from the web.</p></body></html>",
        ),
        "/paper.pdf": ("application/pdf", pdf_bytes(["A fetched PDF."])),
        "/legacy": ("text/html; charset=iso-8859-1", "<p>Café crème</p>".encode("latin-1")),
    }

    def do_GET(self):  # noqa: N802
        content_type, body = self.pages.get(self.path, ("text/plain", b""))
        self.send_response(200 if self.path in self.pages else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site(settings):
    settings.OUTBOUND_ALLOW_HOSTS = ["127.0.0.1"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_urls_are_fetched_through_the_safe_client(kb, alice, site, celery_worker):
    page = _settled(ingest.document_add_url(kb=kb, by=alice, url=f"{site}/guide"))
    paper = _settled(ingest.document_add_url(kb=kb, by=alice, url=f"{site}/paper.pdf"))
    missing = _settled(ingest.document_add_url(kb=kb, by=alice, url=f"{site}/gone"))
    legacy = _settled(ingest.document_add_url(kb=kb, by=alice, url=f"{site}/legacy"))

    assert (page.status, page.mime_type, page.source) == (Status.READY, "text/html", "url")
    assert page.chunks.get().metadata["heading_path"] == ["Guide"]
    assert page.sha256 == Document.digest(_Site.pages["/guide"][1])
    assert default_storage.open(page.file.name).read() == _Site.pages["/guide"][1]
    assert (paper.status, paper.pages, paper.mime_type) == (Status.READY, 1, "application/pdf")
    assert (missing.status, missing.error) == (Status.FAILED, "The URL answered with HTTP 404.")
    # Stored as UTF-8, so a retry or re-index reads it without the response's charset.
    assert legacy.chunks.get().text == "Café crème"
    assert default_storage.open(legacy.file.name).read() == "<p>Café crème</p>".encode()
    with pytest.raises(ServiceError, match="already in this knowledge base"):
        ingest.document_add_url(kb=kb, by=alice, url=f"{site}/guide")


def test_a_url_over_the_size_limit_fails_without_storing(kb, alice, site, settings, media, celery_worker):
    settings.KNOWLEDGE_MAX_FILE_BYTES = 20

    document = _settled(ingest.document_add_url(kb=kb, by=alice, url=f"{site}/guide"))

    assert document.status == Status.FAILED
    assert "exceeds 20 bytes" in document.error
    assert _stored_files(media) == []


# ------------------------------------------------------------------ progress over the websocket


async def _socket(user, kb_id: int, query: str = "") -> WebsocketCommunicator:
    headers = await database_sync_to_async(session_ws_headers)(user)
    communicator = WebsocketCommunicator(application, f"/ws/knowledge/{kb_id}/{query}", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_progress_reaches_ready_over_the_websocket(kb, alice, celery_worker):
    communicator = await _socket(alice, kb.pk, "?format=json")

    document = await database_sync_to_async(ingest.document_add_text)(
        kb=kb, by=alice, title="t", text="Hello there."
    )

    notices = []
    while not notices or notices[-1]["status"] not in ("ready", "failed"):
        notices.append(json.loads(await communicator.receive_from(timeout=10)))
    assert {n["document_id"] for n in notices} == {document.pk}
    assert notices[0]["status"] == "processing" and notices[-1] == {
        "type": "kb.progress",
        "document_id": document.pk,
        "status": "ready",
        "progress": 100,
        "error": "",
    }
    progress = [n["progress"] for n in notices]
    assert progress == sorted(progress)
    await communicator.disconnect()


async def test_progress_arrives_as_an_oob_fragment_with_the_failure_reason(kb, alice, celery_worker):
    communicator = await _socket(alice, kb.pk)

    document = await database_sync_to_async(ingest.document_add_file)(
        kb=kb, by=alice, filename="blank.pdf", data=pdf_bytes([""])
    )

    html = ""
    while "Failed" not in html:
        html = await communicator.receive_from(timeout=10)
    assert f'<div id="doc-{document.pk}-progress" hx-swap-oob="true"' in html
    assert "<progress" in html and "no text found" in html
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_another_organizations_knowledge_base_socket_is_refused(kb, charlie, charlie_org):
    headers = await database_sync_to_async(session_ws_headers)(charlie)
    communicator = WebsocketCommunicator(application, f"/ws/knowledge/{kb.pk}/", headers=headers)

    connected, code = await communicator.connect()

    assert (connected, code) == (False, 4404)


@pytest.mark.django_db(transaction=True)
async def test_anonymous_progress_socket_is_refused(kb):
    communicator = WebsocketCommunicator(
        application, f"/ws/knowledge/{kb.pk}/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )

    connected, code = await communicator.connect()

    assert (connected, code) == (False, 4401)


def test_ingestion_tasks_go_to_the_ingest_queue():
    from config.celery import app
    from knowledge.tasks import ingest_document, reindex_knowledge_base

    for task in (ingest_document, reindex_knowledge_base):
        assert app.amqp.router.route({}, task.name)["queue"].name == "ingest"
        assert task.acks_late
