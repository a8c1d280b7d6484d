"""Hire an agent from a template, chat, watch the reply stream in token by token over the websocket,
reload mid-stream and see it finish. daphne serves the app (live_server is WSGI only, without
websockets); a real Celery worker runs the agent against the fake LLM server."""

from __future__ import annotations

import pytest

from accounts.services import organization_create
from agents.models import Agent, AgentRun
from agents.runtime.providers import clients_clear
from tests.browser.conftest import daphne
from tests.conftest import PASSWORD, wait_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WORDS = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " * 3


@pytest.fixture
def fake_openai(fake_llm, monkeypatch):
    """The worker (in this process) and daphne (a child process) both talk to the fake server."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-platform-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_llm.base_url)
    monkeypatch.delenv("DEFAULT_LLM_MODEL", raising=False)
    fake_llm.token_latency_ms = 0
    fake_llm.reset()
    clients_clear()
    yield fake_llm
    clients_clear()


@pytest.fixture
def asgi_server(transactional_db, fake_openai):
    with daphne() as url:
        yield url


def _text(page, run_id: int) -> str:
    return (
        page.locator(f"#run-{run_id}-text").inner_text()
        if page.locator(f"#run-{run_id}-text").count()
        else ""
    )


def test_hire_chat_stream_and_reload_mid_stream(asgi_server, celery_worker, page, artifacts):
    organization_create(name="Pat Labs", owner=UserFactory(email="pat@example.com", name="Pat"))

    page.goto(asgi_server + "/accounts/login/")
    page.fill("input[name=login]", "pat@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.wait_for_url("**/dashboard/")

    # Hire from a template, in the two-step modal.
    page.goto(asgi_server + "/agents/")
    page.get_by_role("link", name="Hire an agent").first.click()
    dialog = page.locator("dialog[open]")
    dialog.get_by_test_id("role-research").click()
    dialog.locator("#hire-name").fill("Rita")
    dialog.get_by_role("button", name="Hire Rita").click()
    page.wait_for_url("**/agents/*/")
    agent = Agent.objects.get(name="Rita")
    assert agent.published_version is not None and agent.role == "research"

    # Chat: the reply streams in over the websocket, token by token.
    page.fill("#chat-input", f"[[latency:80]] {WORDS}")
    page.get_by_role("button", name="Send").click()
    run = wait_for(lambda: AgentRun.objects.filter(agent=agent).first())
    wait_for(lambda: len(_text(page, run.pk)) > 10, timeout=15)
    early = _text(page, run.pk)
    wait_for(lambda: len(_text(page, run.pk)) > len(early) + 10, timeout=10)
    assert page.locator(f"#run-{run.pk}-bubble").get_attribute("data-status") == "live"

    # Reload mid-stream: the text so far is drawn by the server, then the socket resumes after it.
    page.reload()
    run.refresh_from_db()
    assert run.status == AgentRun.Status.RUNNING, "the stream should outlast the reload"
    assert _text(page, run.pk).startswith("Echo: one two")
    page.wait_for_selector(f'#run-{run.pk}-bubble[data-status="succeeded"]', timeout=30_000)

    reply = page.locator(f'#run-{run.pk}-bubble [data-testid="reply"]').inner_text()
    assert reply.strip() == f"Echo: {WORDS.strip()}"  # every token once: no gaps, no duplicates
    assert page.get_by_role("button", name="Bad answer").is_visible()
    page.screenshot(path=str(artifacts / "agents_chat.png"), full_page=True)
    assert (artifacts / "agents_chat.png").stat().st_size > 10_000
