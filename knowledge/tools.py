"""The `knowledge_search` tool: an agent searches its attached knowledge bases and cites what it used.

The runtime adds the tool to every agent whose config attaches knowledge bases, with the agent's
knowledge settings (top_k, threshold, token_budget) as the tool's config. The result is JSON: the
passages (trimmed to the token budget) with their chunk and document ids, titles and pages, and an
instruction to cite them. The executor turns the returned passages into the reply's citations.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from agno.tools.function import Function

from agents.config import KnowledgeSettings, ToolSpec
from agents.runtime.tools import ToolContext, ToolType, _function
from knowledge.chunking import count_tokens

logger = logging.getLogger(__name__)

MIN_PASSAGE_TOKENS = 40  # a passage cut shorter than this says too little to be worth citing
CITE = (
    "Answer from these passages and cite each one you use inline as [n], its `source` number; "
    "say so if they do not contain the answer."
)


def settings_from(spec: ToolSpec, ctx: ToolContext) -> KnowledgeSettings:
    """The runtime passes the agent's knowledge settings as the tool's config. A tool someone put in
    the tools list by hand falls back to the settings of the agent's current version."""
    if spec.config.get("knowledge_base_ids"):
        fields = {k: v for k, v in spec.config.items() if k in KnowledgeSettings.model_fields}
        return KnowledgeSettings.model_validate(fields)
    from agents.models import Agent
    from agents.runtime.builder import version_config

    agent = (
        Agent.objects.for_org(ctx.org_id).select_related("published_version").filter(pk=ctx.agent_id).first()
    )
    version = agent and (agent.published_version or agent.latest_version())
    return version_config(version).knowledge if version else KnowledgeSettings()


def trim_to_budget(texts: list[str], budget: int) -> list[str]:
    """Whole passages while they fit; then the part of the next one that fits (if it says enough)."""
    kept: list[str] = []
    left = budget
    for text in texts:
        tokens = count_tokens(text)
        if tokens <= left:
            kept.append(text)
            left -= tokens
            continue
        if left >= MIN_PASSAGE_TOKENS:
            words = text.split()
            cut: list[str] = []
            for word in words:
                if count_tokens(" ".join([*cut, word])) > left:
                    break
                cut.append(word)
            if cut:
                kept.append(" ".join(cut) + " …")
        break
    return kept


def run_search(*, org_id: int, settings: KnowledgeSettings, query: str) -> dict[str, Any]:
    """Search the attached bases of the org (others are ignored) and shape the result for the model."""
    from knowledge.models import KnowledgeBase
    from knowledge.search import search

    query = (query or "").strip()
    if not query:
        return {"error": "Give a search query."}
    kbs = dict(
        KnowledgeBase.objects.for_org(org_id)
        .filter(pk__in=settings.knowledge_base_ids)
        .values_list("pk", "embedding_provider")
    )
    if not kbs:
        return {"error": "No knowledge base is attached to this agent any more."}
    # Hybrid search falls back to keywords by itself when the embedding provider is down.
    hits = search(org=org_id, query=query, knowledge_base_ids=list(kbs), top_k=settings.top_k, mode="hybrid")
    if settings.threshold > 0:
        hits = above_threshold(org_id=org_id, query=query, hits=hits, kbs=kbs, settings=settings)
    texts = trim_to_budget([h.text for h in hits], settings.token_budget)
    results = [
        _passage(n, hit, text) for n, (hit, text) in enumerate(zip(hits, texts, strict=False), start=1)
    ]
    return {
        "query": query,
        "results": results,
        "instructions": CITE if results else "Nothing relevant was found in the knowledge bases.",
    }


def _passage(n: int, hit: Any, text: str) -> dict[str, Any]:
    passage: dict[str, Any] = {
        "source": n,
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "title": hit.document_title,
        "page": hit.page,
    }
    if hit.heading_path:
        passage["heading"] = " › ".join(str(h) for h in hit.heading_path)
    passage["text"] = text
    return passage


def above_threshold(
    *, org_id: int, query: str, hits: list[Any], kbs: dict[int, str], settings: KnowledgeSettings
) -> list[Any]:
    """Keep the hits whose cosine similarity to the query reaches the agent's threshold.

    Hybrid scores are rank-based (RRF), so the similarity comes from a vector search over the same
    bases. Bases without embeddings have no similarity: their keyword hits are kept."""
    from knowledge.embeddings import EmbeddingError
    from knowledge.models import KnowledgeBase
    from knowledge.search import search

    embedded = {pk for pk, provider in kbs.items() if provider != KnowledgeBase.EmbeddingProvider.NONE}
    if not embedded:
        return hits
    try:
        nearest = search(
            org=org_id,
            query=query,
            knowledge_base_ids=list(embedded),
            top_k=min(100, settings.top_k * 5),
            mode="vector",
        )
    except EmbeddingError:
        return hits  # no similarity to judge by: better the fused hits than nothing
    similarity = {h.chunk_id: h.score for h in nearest}
    return [
        h
        for h in hits
        if h.knowledge_base_id not in embedded or similarity.get(h.chunk_id, 0.0) >= settings.threshold
    ]


def build_knowledge_search(spec: ToolSpec, ctx: ToolContext) -> Function:
    settings = settings_from(spec, ctx)

    def knowledge_search(query: str = "") -> str:
        try:
            result = run_search(org_id=ctx.org_id, settings=settings, query=query)
        except Exception as exc:  # the model gets a reason and goes on; the run does not crash
            logger.exception("knowledge_search failed")
            result = {"error": f"Knowledge search failed ({type(exc).__name__})."}
        return json.dumps(result, ensure_ascii=False)

    return _function(
        spec.name or "knowledge_search",
        spec.description
        or "Search the knowledge bases attached to you (uploaded documents, pages, notes) for passages "
        "about a question. Returns numbered passages with their document and page; cite them as [n].",
        {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "What to look for, in plain words."}},
            "required": ["query"],
        },
        knowledge_search,
    )


TOOL_TYPE = ToolType(
    "knowledge_search",
    "Knowledge search",
    "Search the knowledge bases attached to the agent and cite the passages used.",
    {},
    build_knowledge_search,
)
