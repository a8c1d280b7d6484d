"""Agents and knowledge: an agent with knowledge bases gets the knowledge_search tool, the tool searches
only its own organization's bases within the agent's top-k, threshold and token budget, and a chat
run stores the sources it used as citations that the chat renders as chips opening the passage."""

from __future__ import annotations

import json

import pytest

from agents import services
from agents.config import KnowledgeSettings
from agents.models import Message
from agents.runtime.builder import build_agent
from agents.runtime.citations import citations_in
from agents.runtime.executor import execute_run
from agents.runtime.tools import ToolContext
from knowledge import ingest
from knowledge.chunking import count_tokens
from knowledge.models import Chunk, Document
from knowledge.tools import run_search, trim_to_budget
from tests.agents.conftest import make_agent  # noqa: F401
from tests.knowledge.conftest import pdf_bytes

pytestmark = pytest.mark.django_db

TRAVEL = "Hotel stays are reimbursed up to 150 euros per night. Employees book economy class flights."
EQUIPMENT = "Every new hire receives a laptop and a second monitor on the first day."


def _ready(document: Document) -> Document:
    assert ingest.ingest(document.pk) == "ready", Document.objects.get(pk=document.pk).error
    document.refresh_from_db()
    return document


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


@pytest.fixture
def handbook(kb, alice):
    """A two-page PDF in a keyword-only knowledge base: travel on page 1, equipment on page 2."""
    return _ready(
        ingest.document_add_file(
            kb=kb, by=alice, filename="handbook.pdf", data=pdf_bytes([TRAVEL, EQUIPMENT])
        )
    )


def _tool_names(agent, acme):
    version = agent.published_version
    built = build_agent(agent=agent, version=version, ctx=ToolContext(acme.pk, agent.pk, None, None))
    return [t.name for t in built.runner.tools or []]


def test_an_agent_with_knowledge_gets_the_search_tool(make_agent, kb, acme, llm):  # noqa: F811
    plain = make_agent(name="Plain", tools=[{"type": "calculator"}])
    reader = make_agent(name="Reader", knowledge={"knowledge_base_ids": [kb.pk]})

    assert _tool_names(plain, acme) == ["calculator"]
    assert _tool_names(reader, acme) == ["knowledge_search"]


def test_search_returns_cited_passages_with_titles_and_pages(handbook, kb, acme):
    result = run_search(
        org_id=acme.pk, settings=KnowledgeSettings(knowledge_base_ids=[kb.pk]), query="laptop monitor"
    )

    top = result["results"][0]
    chunk = Chunk.objects.get(pk=top["chunk_id"])
    assert (top["source"], top["document_id"], top["title"], top["page"]) == (
        1,
        handbook.pk,
        "handbook.pdf",
        2,
    )
    assert top["text"] == chunk.text and "laptop" in top["text"]
    assert "cite" in result["instructions"] and "[n]" in result["instructions"]


def test_search_respects_top_k_and_the_token_budget(kb, alice, acme):
    for n in range(4):
        _ready(
            ingest.document_add_text(
                kb=kb, by=alice, title=f"Note {n}", text=f"Budget rules part {n}. " + "Spend wisely. " * 40
            )
        )
    settings = KnowledgeSettings(knowledge_base_ids=[kb.pk], top_k=3, token_budget=150)

    results = run_search(org_id=acme.pk, settings=settings, query="budget rules")["results"]

    assert 1 <= len(results) <= 3
    assert sum(count_tokens(r["text"]) for r in results) <= 150 + len(results)  # "…" marks a cut passage


def test_trim_to_budget_keeps_whole_passages_then_cuts_the_next():
    passages = ["one two three four five", "six seven eight nine ten " * 20, "never reached"]

    kept = trim_to_budget(passages, budget=50)

    assert kept[0] == passages[0]
    assert len(kept) == 2 and kept[1].endswith("…") and count_tokens(kept[1]) <= 46
    assert trim_to_budget(passages, budget=3) == []  # nothing fits whole, and a stub says too little


def test_threshold_drops_passages_below_the_similarity(embedded_kb, alice, acme):
    _ready(ingest.document_add_text(kb=embedded_kb, by=alice, title="Travel", text=TRAVEL))
    base = {"knowledge_base_ids": [embedded_kb.pk], "top_k": 5}

    loose = run_search(
        org_id=acme.pk, settings=KnowledgeSettings(**base, threshold=0.0), query="hotel night euros"
    )
    strict = run_search(
        org_id=acme.pk, settings=KnowledgeSettings(**base, threshold=0.99), query="hotel night euros"
    )

    assert [r["title"] for r in loose["results"]] == ["Travel"]
    assert strict["results"] == [] and "Nothing relevant" in strict["instructions"]


def test_search_ignores_knowledge_bases_of_other_orgs(make_kb, charlie_org, charlie, acme):
    theirs = make_kb(org=charlie_org, name="Secret")
    _ready(ingest.document_add_text(kb=theirs, by=charlie, title="Secret", text=TRAVEL))

    result = run_search(
        org_id=acme.pk, settings=KnowledgeSettings(knowledge_base_ids=[theirs.pk]), query="hotel"
    )

    assert "results" not in result and "No knowledge base" in result["error"]


def test_citations_are_read_only_from_search_results():
    found = json.dumps({"results": [{"chunk_id": 7, "document_id": 3, "title": "A", "page": 2, "text": "x"}]})

    assert citations_in(found) == [{"chunk_id": 7, "document_id": 3, "title": "A", "page": 2}]
    assert citations_in("Tool result: 42") == []
    assert citations_in('{"chunk_id": "not a list"}') == []


def test_the_agent_cites_its_sources_in_a_chat_run(client, make_agent, handbook, kb, alice, acme, llm):  # noqa: F811
    agent = make_agent(name="Reader", knowledge={"knowledge_base_ids": [kb.pk], "top_k": 2})
    run = services.run_create(
        agent=agent, user=alice, input='[[tool:knowledge_search {"query": "laptop monitor"}]]'
    )

    assert execute_run(run.pk) == "succeeded"

    reply = Message.objects.get(run=run, role=Message.Role.ASSISTANT)
    chunk = Chunk.objects.get(document=handbook, metadata__page=2)
    assert reply.citations[0] == {
        "chunk_id": chunk.pk,
        "document_id": handbook.pk,
        "title": "handbook.pdf",
        "page": 2,
    }
    assert reply.tool_calls[0]["name"] == "knowledge_search"
    # The model saw the passages (the fake model answers with the tool's result).
    assert "second monitor" in reply.content
    page = _login(client, alice, acme).get(f"/agents/{agent.pk}/?session={run.session_id}").content.decode()
    assert 'data-testid="citations"' in page
    assert f'data-chunk="{chunk.pk}"' in page and "handbook.pdf" in page and "· p. 2" in page
    assert f'hx-get="/knowledge/chunks/{chunk.pk}/"' in page
    passage = client.get(f"/knowledge/chunks/{chunk.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "second monitor" in passage and "<html" not in passage


def test_a_run_without_knowledge_search_has_no_citations(make_agent, alice, llm):  # noqa: F811
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hello")

    execute_run(run.pk)

    assert Message.objects.get(run=run, role=Message.Role.ASSISTANT).citations == []


def test_a_citation_chunk_of_another_org_is_404(client, handbook, charlie, charlie_org):
    chunk = Chunk.objects.filter(document=handbook).first()

    response = _login(client, charlie, charlie_org).get(f"/knowledge/chunks/{chunk.pk}/")

    assert response.status_code == 404


def test_knowledge_search_is_billed_per_call_plus_context(make_agent, handbook, kb, alice, acme, llm):  # noqa: F811
    """Billing (#6): file search costs 1 credit plus 0.5 per 1K context tokens, on top of the tokens."""
    from decimal import Decimal

    from billing.models import CreditTransaction
    from billing.pricing import token_cost

    agent = make_agent(name="Reader", knowledge={"knowledge_base_ids": [kb.pk], "top_k": 2})
    run = services.run_create(
        agent=agent, user=alice, input='[[tool:knowledge_search {"query": "laptop monitor"}]]'
    )
    assert execute_run(run.pk) == "succeeded"
    run.refresh_from_db()
    usage = CreditTransaction.objects.get(organization=acme, idempotency_key=f"run:{run.pk}:usage")
    tokens_only = token_cost("fake-gpt", run.input_tokens, run.output_tokens)
    tool_part = -usage.amount - tokens_only
    assert Decimal("1") <= tool_part < Decimal("1.5")
    assert usage.user == alice and usage.agent == agent
