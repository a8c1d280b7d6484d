"""Search: hybrid beats keywords on synonyms (fake server embeddings), scope never leaks, filters,
and recall under tenant filtering on 20k vectors (pgvector 0.6.2 has no iterative index scans)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
from django.db import connection, transaction
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from accounts.models import Organization
from knowledge.embeddings import embed_texts
from knowledge.models import Chunk, Document, KnowledgeBase
from knowledge.search import SearchError, search


def add_document(kb, title, texts, *, metadata=None):
    """A ready document whose chunks carry the knowledge base's real embeddings."""
    doc = Document.objects.create(
        organization=kb.organization,
        knowledge_base=kb,
        source=Document.Source.TEXT,
        title=title,
        sha256=f"{kb.pk}-{title}",
        status=Document.Status.READY,
    )
    vectors = embed_texts(kb=kb, texts=texts).vectors
    Chunk.objects.bulk_create(
        Chunk(
            organization=kb.organization,
            knowledge_base=kb,
            document=doc,
            ordinal=i,
            text=text,
            metadata={"page": i + 1, "heading_path": [title], "source": f"{title}.txt", **(metadata or {})},
            embedding=vectors[i] if vectors else None,
            embedding_dim=kb.embedding_dim if vectors else None,
        )
        for i, text in enumerate(texts)
    )
    return doc


CORPUS = {
    "Cars": "We buy a car every ten years.",
    "Pets": "A happy dog plays in the park.",
    "Health": "Book a visit with your doctor.",
    "Weather": "Rain is expected on Tuesday afternoon.",
    "Cooking": "Bake the apple pie for forty minutes.",
    "Finance": "Quarterly revenue grew by four percent.",
}
SEMANTIC = {"purchase an automobile": "Cars", "joyful puppy": "Pets", "physician": "Health"}


def fill(kb):
    return {title: add_document(kb, title, [text]) for title, text in CORPUS.items()}


def titles(hits):
    return [h.document_title for h in hits]


def test_hybrid_finds_synonyms_that_keyword_search_misses(embedded_kb):
    fill(embedded_kb)

    def top1(mode):
        return sum(
            titles(
                search(org=embedded_kb.organization, query=q, knowledge_base_ids=[embedded_kb.pk], mode=mode)
            )[:1]
            == [want]
            for q, want in SEMANTIC.items()
        )

    assert top1("keyword") == 0
    assert top1("hybrid") == len(SEMANTIC)


def test_hybrid_keeps_exact_keyword_matches_first(embedded_kb):
    fill(embedded_kb)

    hits = search(org=embedded_kb.organization, query="apple pie", knowledge_base_ids=[embedded_kb.pk])

    assert hits[0].document_title == "Cooking"
    assert hits[0].ranks == {"vector": 1, "keyword": 1, "fused": 1}


def test_each_mode_reports_its_ranks_and_score(embedded_kb):
    fill(embedded_kb)
    ask = {"org": embedded_kb.organization, "query": CORPUS["Cars"], "knowledge_base_ids": [embedded_kb.pk]}

    hybrid = search(**ask, mode="hybrid")
    vector = search(**ask, mode="vector")
    keyword = search(**ask, mode="keyword")

    assert [h.ranks["fused"] for h in hybrid] == list(range(1, len(hybrid) + 1))
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    assert vector[0].document_title == "Cars" and vector[0].score == pytest.approx(1.0)  # cosine similarity
    assert all(h.ranks["keyword"] is None and h.ranks["vector"] == h.ranks["fused"] for h in vector)
    assert [h.document_title for h in keyword] == ["Cars"]
    assert keyword[0].ranks == {"vector": None, "keyword": 1, "fused": 1}
    assert (keyword[0].page, keyword[0].heading_path) == (1, ["Cars"])


def test_another_orgs_knowledge_base_is_404(embedded_kb, make_kb, charlie_org):
    theirs = make_kb(org=charlie_org, name="Theirs")

    for ids in ([theirs.pk], [embedded_kb.pk, theirs.pk], [999_999]):
        with pytest.raises(Http404):
            search(org=embedded_kb.organization, query="car", knowledge_base_ids=ids)
    with pytest.raises(Http404):
        search(org=charlie_org, query="car", knowledge_base_ids=[embedded_kb.pk])


def test_other_tenants_chunks_never_appear(embedded_kb, make_kb, charlie_org):
    fill(embedded_kb)
    theirs = make_kb(
        org=charlie_org,
        name="Theirs",
        embedding_provider=KnowledgeBase.EmbeddingProvider.OPENAI,
        embedding_model="text-embedding-3-small",
    )
    fill(theirs)
    # A chunk that names Acme's knowledge base but belongs to charlie's org still stays out.
    stray = Chunk.objects.filter(knowledge_base=theirs).first()
    Chunk.objects.filter(pk=stray.pk).update(knowledge_base=embedded_kb)
    leaked = set(Chunk.objects.filter(organization=charlie_org).values_list("pk", flat=True))

    for mode in ("hybrid", "vector", "keyword"):
        for query in ["buy a car", *SEMANTIC]:
            hits = search(
                org=embedded_kb.organization, query=query, knowledge_base_ids=[embedded_kb.pk], mode=mode
            )
            assert not {h.chunk_id for h in hits} & leaked


def test_knowledge_base_without_embeddings_searches_keywords(kb, llm):
    fill(kb)
    calls = llm.stats()["endpoints"].get("POST /v1/embeddings", 0)

    hits = search(org=kb.organization, query="apple pie", knowledge_base_ids=[kb.pk], mode="hybrid")

    assert titles(hits) == ["Cooking"] and hits[0].ranks["vector"] is None
    assert search(org=kb.organization, query="purchase an automobile", knowledge_base_ids=[kb.pk]) == []
    assert llm.stats()["endpoints"].get("POST /v1/embeddings", 0) == calls


def test_models_are_embedded_once_each_and_fused(embedded_kb, make_kb, kb, llm):
    same_model = make_kb(
        name="Same model", embedding_provider="openai", embedding_model="text-embedding-3-small"
    )
    large = make_kb(
        name="Large", embedding_provider="openai", embedding_model="text-embedding-3-large", embedding_dim=768
    )
    for base in (embedded_kb, same_model, large, kb):
        add_document(base, f"Cars {base.name}", [CORPUS["Cars"]])
    llm.reset()

    hits = search(
        org=embedded_kb.organization,
        query="purchase an automobile",
        knowledge_base_ids=[embedded_kb.pk, same_model.pk, large.pk, kb.pk],
        top_k=10,
    )

    assert llm.stats()["endpoints"]["POST /v1/embeddings"] == 2  # 384 and 768 dimensions
    vector_hits = {h.knowledge_base_id for h in hits if h.ranks["vector"] == 1}
    assert vector_hits >= {embedded_kb.pk, large.pk}  # each group ranks its own best first
    assert kb.pk not in {h.knowledge_base_id for h in hits}  # keywords alone miss the synonym


def test_hybrid_falls_back_to_keywords_when_the_provider_is_down(embedded_kb, monkeypatch, settings):
    from agents.runtime.providers import clients_clear
    from bench.stack import free_port

    fill(embedded_kb)
    settings.EMBEDDING_RETRY_BACKOFF_SECONDS = 0
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    clients_clear()
    ask = {"org": embedded_kb.organization, "query": "apple pie", "knowledge_base_ids": [embedded_kb.pk]}

    assert titles(search(**ask, mode="hybrid")) == ["Cooking"]
    with pytest.raises(Exception, match="failed after 3 attempts"):
        search(**ask, mode="vector")


# ------------------------------------------------------------------ filters


@pytest.fixture
def paged(embedded_kb):
    manual = add_document(embedded_kb, "Manual", [f"car maintenance step {n}" for n in range(5)])
    guide = add_document(embedded_kb, "Guide", ["car buying guide"], metadata={"source": "guide.pdf"})
    return embedded_kb, manual, guide


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_filters_narrow_every_mode(paged, mode):
    kb, manual, guide = paged

    def found(filters):
        hits = search(
            org=kb.organization, query="car", knowledge_base_ids=[kb.pk], top_k=20, mode=mode, filters=filters
        )
        return sorted((h.document_title, h.page) for h in hits)

    assert found({"document_ids": [guide.pk]}) == [("Guide", 1)]
    assert found({"source": "guide.pdf"}) == [("Guide", 1)]
    assert found({"source": ["guide.pdf", "nowhere.pdf"]}) == [("Guide", 1)]
    assert found({"document_ids": [manual.pk], "page": {"gte": 2, "lte": 3}}) == [
        ("Manual", 2),
        ("Manual", 3),
    ]
    assert found({"page": {"gt": 4}}) == [("Manual", 5)]


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "fuzzy"},
        {"top_k": 0},
        {"filters": {"page": {"between": 1}}},
        {"filters": {"page": {"gte": "one"}}},
        {"filters": {"document_ids": "7"}},
        {"filters": ["page"]},
    ],
)
def test_bad_input_is_a_search_error(embedded_kb, bad):
    with pytest.raises(SearchError):
        search(org=embedded_kb.organization, query="car", knowledge_base_ids=[embedded_kb.pk], **bad)


# ------------------------------------------------------------------ recall under filtering

DIM, ROWS, CENTRES, QUERIES = 384, 20_000, 400, 10


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _near(rng, centre):
    return _unit([x + (rng.random() - 0.5) * 0.2 for x in centre])


@dataclass
class RecallData:
    org: Organization
    big: KnowledgeBase  # 99% of all chunks
    small: KnowledgeBase  # 1%
    vectors: dict[int, list[float]]  # chunk id -> vector
    pages: dict[int, int]  # chunk id -> metadata page
    queries: list[list[float]]

    def of(self, kb, page_at_most=None):
        ids = Chunk.objects.filter(knowledge_base=kb).values_list("pk", flat=True)
        return {pk: self.vectors[pk] for pk in ids if page_at_most is None or self.pages[pk] <= page_at_most}


@pytest.fixture(scope="module")
def recall_data(django_db_setup, django_db_blocker):
    """20k clustered unit vectors (like real embeddings) in two knowledge bases, committed once for
    the module. The HNSW index is rebuilt after the bulk load, as inserting into it row by row is slow."""
    rng = random.Random(1234)
    centres = [_unit([rng.gauss(0, 1) for _ in range(DIM)]) for _ in range(CENTRES)]
    vectors = [_near(rng, rng.choice(centres)) for _ in range(ROWS)]
    with django_db_blocker.unblock():
        org = Organization.objects.create(name="Recall", slug="recall-test")
        kbs, docs = [], []
        for name in ("big", "small"):
            kb = KnowledgeBase.objects.create(
                organization=org, name=name, embedding_model="text-embedding-3-small", embedding_dim=DIM
            )
            kbs.append(kb)
            docs.append(Document.objects.create(organization=org, knowledge_base=kb, title=name, sha256=name))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX chunk_embedding_hnsw_{DIM}")
            columns = "organization_id, knowledge_base_id, document_id, ordinal, text, metadata, token_count, embedding, embedding_dim"
            with cursor.copy(f"COPY knowledge_chunk ({columns}) FROM STDIN") as copy:
                for i, v in enumerate(vectors):
                    which = 1 if i % 100 == 0 else 0
                    literal = "[" + ",".join(map(repr, v)) + "]"
                    metadata = f'{{"page": {i % 50}}}'
                    copy.write_row(
                        (org.pk, kbs[which].pk, docs[which].pk, i, f"chunk {i}", metadata, 2, literal, DIM)
                    )
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # CREATE INDEX refuses pending FK checks
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            cursor.execute(
                f"CREATE INDEX chunk_embedding_hnsw_{DIM} ON knowledge_chunk USING hnsw "
                f"((embedding::vector({DIM})) vector_cosine_ops) WITH (m = 24, ef_construction = 100) "
                f"WHERE embedding_dim = {DIM}"
            )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE knowledge_chunk")
        ordinals = dict(Chunk.objects.filter(organization=org).values_list("pk", "ordinal"))
    yield RecallData(
        org,
        kbs[0],
        kbs[1],
        vectors={pk: vectors[n] for pk, n in ordinals.items()},
        pages={pk: n % 50 for pk, n in ordinals.items()},
        queries=[_near(rng, rng.choice(centres)) for _ in range(QUERIES)],
    )
    with django_db_blocker.unblock():
        Chunk.objects.filter(organization=org).delete()
        org.delete()


def _vector_search(monkeypatch, data, kb, vector, **kwargs):
    monkeypatch.setattr("knowledge.search.embed_query", lambda *, kb, text: vector)  # the vector is the query
    return [
        h.chunk_id
        for h in search(
            org=data.org, query="q", knowledge_base_ids=[kb.pk], top_k=10, mode="vector", **kwargs
        )
    ]


def _brute_force(vectors, query, k=10):
    score = {pk: sum(a * b for a, b in zip(v, query, strict=True)) for pk, v in vectors.items()}
    return sorted(score, key=lambda pk: -score[pk])[:k]


def _sql_exact(data, kb, vector, k=10):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM knowledge_chunk WHERE knowledge_base_id = %s ORDER BY embedding <=> %s::vector LIMIT %s",
            [kb.pk, "[" + ",".join(map(repr, vector)) + "]", k],
        )
        return [row[0] for row in cursor.fetchall()]


def _vector_plan(ctx):
    """EXPLAIN of the captured vector query (the one ordering by distance)."""
    sql = next(q["sql"] for q in ctx.captured_queries if "<=>" in q["sql"])
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return sql, "\n".join(row[0] for row in cursor.fetchall())


def _recall(found, truth):
    return len(set(found) & set(truth)) / len(truth)


def test_premise_a_plain_hnsw_scan_with_a_tenant_filter_loses_rows(recall_data, db):
    """Why search.py does not simply filter an HNSW scan: pgvector 0.6 filters after the scan."""
    data = recall_data
    vector = "[" + ",".join(map(repr, data.queries[0])) + "]"
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # make it use the index
            cursor.execute("SELECT set_config(%s, 'off', true)", [setting])
        cursor.execute(
            "SELECT id FROM knowledge_chunk WHERE knowledge_base_id = %s AND embedding_dim = 384 "
            "ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 10",
            [data.small.pk, vector],
        )
        assert len(cursor.fetchall()) < 10  # ef_search 40 candidates, ~1% of them in the small base


def test_one_percent_knowledge_base_gets_a_full_top_k_at_high_recall(recall_data, db, monkeypatch):
    data = recall_data
    recalls = []
    for query in data.queries:
        found = _vector_search(monkeypatch, data, data.small, query)
        assert len(found) == 10
        recalls.append(_recall(found, _brute_force(data.of(data.small), query)))

    assert sum(recalls) / len(recalls) >= 0.95


def test_small_filtered_sets_are_searched_exactly_without_the_index(recall_data, db, monkeypatch):
    with CaptureQueriesContext(connection) as ctx:
        _vector_search(monkeypatch, recall_data, recall_data.small, recall_data.queries[0])

    sql, plan = _vector_plan(ctx)
    assert "::vector(384)" not in sql and "hnsw" not in plan


def test_low_selectivity_stays_exact_even_above_the_row_cap(recall_data, db, monkeypatch, settings):
    settings.KNOWLEDGE_EXACT_SEARCH_MAX_ROWS = 100  # the 1% base (200 rows) is over it
    data = recall_data
    with CaptureQueriesContext(connection) as ctx:
        found = _vector_search(monkeypatch, data, data.small, data.queries[1])

    # ef_search would have to exceed pgvector's 1000 for 1% selectivity, so it goes exact instead
    assert "::vector(384)" not in _vector_plan(ctx)[0]
    assert found == _brute_force(data.of(data.small), data.queries[1])


def test_migrations_build_one_hnsw_index_per_dimension_with_the_tuned_graph(db):
    # m 24 / ef_construction 100: what bench/bench_search.py measured at 1M chunks (knowledge 0005).
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'chunk_embedding_hnsw_%'")
        indexes = dict(cursor.fetchall())
    assert set(indexes) == {f"chunk_embedding_hnsw_{dim}" for dim in (384, 768, 1024, 1536)}
    for options in indexes.values():
        assert {"m=24", "ef_construction=100"} <= set(options)


def test_large_sets_use_the_hnsw_index_and_keep_recall(recall_data, db, monkeypatch, settings):
    settings.KNOWLEDGE_EXACT_SEARCH_MAX_ROWS = 2_000
    data = recall_data
    with CaptureQueriesContext(connection) as ctx:
        _vector_search(monkeypatch, data, data.big, data.queries[0])
    assert "chunk_embedding_hnsw_384" in _vector_plan(ctx)[1]

    recalls = [
        _recall(_vector_search(monkeypatch, data, data.big, q), _sql_exact(data, data.big, q))
        for q in data.queries
    ]
    assert sum(recalls) / len(recalls) >= 0.95


def test_a_filter_that_leaves_few_rows_of_a_large_base_is_exact(recall_data, db, monkeypatch, settings):
    settings.KNOWLEDGE_EXACT_SEARCH_MAX_ROWS = 2_000
    data = recall_data
    query = data.queries[2]
    with CaptureQueriesContext(connection) as ctx:
        found = _vector_search(monkeypatch, data, data.big, query, filters={"page": {"lte": 1}})  # ~4% of it

    assert "::vector(384)" not in _vector_plan(ctx)[0]
    assert found == _brute_force(data.of(data.big, page_at_most=1), query)
