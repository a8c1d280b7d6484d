"""Upload two files at once on a knowledge base's page, watch each file's upload bar and then its
ingestion progress (pushed over the websocket) reach ready, then search them in the playground.
daphne serves the app; a real Celery worker ingests; embeddings come from the fake server."""

from __future__ import annotations

import pytest

from accounts.services import organization_create
from knowledge.models import Document, KnowledgeBase
from knowledge.services import knowledge_base_create
from tests.browser.test_agents_chat import asgi_server, fake_openai  # noqa: F401
from tests.conftest import PASSWORD, wait_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRAVEL = (
    "# Travel policy\n\nHotel stays are reimbursed up to 150 euros per night. "
    "Flights under six hours are booked in economy class.\n"
)
EQUIPMENT = (
    "Equipment\n\nEvery new hire receives a laptop, a second monitor and a headset on the first day.\n"
)


@pytest.fixture
def media(settings, tmp_path, monkeypatch):
    """daphne (a child process) stores the uploads and the worker (this process) reads them: one folder."""
    folder = tmp_path / "media"
    monkeypatch.setenv("MEDIA_ROOT", str(folder))
    settings.MEDIA_ROOT = folder
    return folder


def test_upload_two_files_watch_them_become_ready_and_search(
    media,
    asgi_server,  # noqa: F811
    celery_worker,
    page,
    artifacts,
):
    owner = UserFactory(email="kim@example.com", name="Kim")
    org = organization_create(name="Kim Labs", owner=owner)
    kb = knowledge_base_create(
        org=org,
        by=owner,
        name="Company handbook",
        embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI,
        embedding_model="text-embedding-3-small",
        embedding_dim=384,
    )
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))

    page.goto(asgi_server + "/accounts/login/")
    page.fill("input[name=login]", "kim@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")

    page.goto(asgi_server + "/knowledge/")
    page.get_by_role("link", name="Company handbook").click()
    page.wait_for_url(f"**/knowledge/{kb.pk}/")
    assert page.get_by_test_id("documents-empty").is_visible()

    # Two files at once, as a drop or a multi-select gives them.
    page.set_input_files(
        "#upload-input",
        [
            {"name": "travel.md", "mimeType": "text/markdown", "buffer": TRAVEL.encode()},
            {"name": "equipment.txt", "mimeType": "text/plain", "buffer": EQUIPMENT.encode()},
        ],
    )
    items = page.get_by_test_id("upload-item")
    items.first.wait_for()
    assert items.count() == 2
    page.wait_for_selector('[data-testid="upload-item"][data-state="done"] >> nth=1', timeout=15_000)
    assert page.locator('[data-testid="upload-item"][data-state="error"]').count() == 0
    for bar in page.locator('[data-testid="upload-item"] [role="progressbar"]').all():
        assert bar.get_attribute("aria-valuenow") == "100"

    documents = wait_for(
        lambda: (
            list(Document.objects.filter(knowledge_base=kb))
            if Document.objects.filter(knowledge_base=kb).count() == 2
            else None
        )
    )
    for document in documents:
        page.wait_for_selector(f'#doc-{document.pk}-progress[data-status="ready"]', timeout=30_000)
    # The progress came over the websocket as out-of-band fragments, not only from the page reloads.
    for document in documents:
        wait_for(
            lambda d=document: any(
                f'id="doc-{d.pk}-progress"' in f and 'data-status="ready"' in f for f in frames
            )
        )
    assert page.get_by_test_id("document-row").count() == 2
    # A settled document's row is redrawn (chunk count, preview link), and the header counts follow.
    page.wait_for_selector('[data-testid="stat-ready"]:text-is("2")')
    page.get_by_role("link", name="Chunks").nth(1).wait_for()
    assert {d.status for d in Document.objects.filter(knowledge_base=kb)} == {"ready"}
    page.screenshot(path=str(artifacts / "knowledge_upload.png"), full_page=True)

    # Search both files in the playground: ranks per method, side by side.
    page.get_by_role("link", name="🔎 Search").click()
    page.wait_for_url("**/knowledge/search/**")
    page.fill("#search-q", "laptop monitor headset")
    page.get_by_role("button", name="Search").click()
    page.get_by_test_id("search-results").wait_for()
    first = page.get_by_test_id("search-hit").first
    assert "equipment.txt" in first.inner_text() and "second monitor" in first.inner_text()
    assert first.get_by_test_id("rank-fused").inner_text() == "#1"
    assert first.get_by_test_id("rank-vector").inner_text().startswith("#")
    assert first.get_by_test_id("rank-keyword").inner_text() == "#1"
    assert "q=laptop" in page.url  # the search is in the URL, so it can be shared and reloaded
    page.screenshot(path=str(artifacts / "knowledge_search.png"), full_page=True)
    assert (artifacts / "knowledge_upload.png").stat().st_size > 10_000
