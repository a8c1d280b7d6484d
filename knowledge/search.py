"""Knowledge search: vector, keyword and hybrid (Reciprocal Rank Fusion), always scoped to one
organization and the knowledge bases asked for.

Recall under filtering. pgvector 0.6.2 has no iterative index scans: an HNSW scan yields
`hnsw.ef_search` candidates and the WHERE clause filters them afterwards, so a knowledge base holding
1% of the index gets ~1% of them back (measured in bench/bench_search.py: recall@10 0.10 at
ef_search 100). Hence, per embedding group:

- small candidate sets (at most KNOWLEDGE_EXACT_SEARCH_MAX_ROWS after the filters) are searched
  EXACTLY: ORDER BY `embedding <=> q` on the bare column, an expression no index matches, so the
  planner reads the filtered rows and sorts them. The planner's row estimate for the knowledge bases
  settles clear cases; near the cap, or with metadata filters, a COUNT capped at cap + 1 decides;
- larger ones use the partial HNSW index (`embedding::vector(N) <=> q::vector(N)`, `embedding_dim =
  N`), with ef_search raised in proportion to how small a share of the index the filter leaves. When
  even pgvector's maximum (1000) would not cover that share, or the scan comes back short, exact
  search runs instead.

Scores: hybrid reports the RRF score, vector the cosine similarity, keyword ts_rank_cd.

SQL here is assembled from fixed fragments (`_scope`) and integers; every value is a parameter.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.http import Http404

from knowledge.embeddings import EmbeddingError, embed_query
from knowledge.models import SUPPORTED_DIMENSIONS, Chunk, KnowledgeBase

if TYPE_CHECKING:
    from accounts.models import Organization

logger = logging.getLogger(__name__)

MODES = ("hybrid", "vector", "keyword")
RRF_K = 60
MAX_TOP_K = 100
HNSW_MAX_EF_SEARCH = 1000  # pgvector's upper bound
OVERSAMPLE = 2.0  # candidates that must survive the filter, per result wanted

# Filter operators on numeric metadata (e.g. {"page": {"gte": 1, "lte": 3}}).
_RANGE_OPS = {"gte": ">=", "gt": ">", "lte": "<=", "lt": "<", "eq": "="}


class SearchError(ValueError):
    """Bad search input (mode, top_k, filters): the API answers 400 with this message."""


@dataclass
class SearchHit:
    chunk_id: int
    document_id: int
    document_title: str
    knowledge_base_id: int
    page: int | None
    heading_path: list[str]
    text: str
    score: float
    ranks: dict[str, int | None] = field(default_factory=dict)  # vector, keyword, fused (1-based)


def search(
    *,
    org: Organization | int,
    query: str,
    knowledge_base_ids: list[int],
    top_k: int = 5,
    mode: str = "hybrid",
    filters: dict[str, Any] | None = None,
) -> list[SearchHit]:
    """Best chunks for `query` across the org's given knowledge bases. An id that is not the
    org's raises Http404."""
    if mode not in MODES:
        raise SearchError(f"Unknown search mode “{mode}”; use one of {', '.join(MODES)}.")
    if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise SearchError(f"top_k must be between 1 and {MAX_TOP_K}.")
    try:
        ids = sorted({int(i) for i in knowledge_base_ids})
    except (TypeError, ValueError):
        raise Http404("No knowledge base matches the given query.")
    kbs = list(KnowledgeBase.objects.for_org(org).filter(id__in=ids))
    if len(kbs) != len(ids):
        raise Http404("No knowledge base matches the given query.")
    org_id = kbs[0].organization_id if kbs else 0
    scope = _scope(org_id=org_id, kb_ids=ids, filters=filters or {})
    if not kbs or not query.strip():
        return []
    pool = top_k if mode == "vector" else max(50, top_k * 5)

    lists: list[tuple[str, list[tuple[int, float]]]] = []  # (method, [(chunk_id, score) best first])
    if mode in ("vector", "hybrid"):
        for group in _embedding_groups(kbs):
            try:
                vector = embed_query(kb=group[0], text=query)
            except EmbeddingError:
                if mode == "vector":
                    raise
                logger.warning("query embedding failed; hybrid search falls back to keywords", exc_info=True)
                continue
            if vector is not None:
                group_ids = [kb.id for kb in group]
                lists.append(("vector", _vector_candidates(vector, scope, group_ids, top_k, pool)))
    if mode in ("keyword", "hybrid"):
        lists.append(("keyword", _keyword_candidates(query, scope, pool)))
    return _fuse(lists, org_id=org_id, mode=mode, top_k=top_k)


# ---------------------------------------------------------------- scope and filters


@dataclass
class _Scope:
    where: str  # SQL over knowledge_chunk aliased c
    params: list[Any]
    filtered: bool  # narrower than whole knowledge bases


def _scope(*, org_id: int, kb_ids: list[int], filters: Any) -> _Scope:
    """The organization, the knowledge bases and the metadata filters, as a WHERE clause."""
    clauses = ["c.organization_id = %s", "c.knowledge_base_id = ANY(%s::bigint[])"]
    params: list[Any] = [org_id, kb_ids]
    if not isinstance(filters, dict):
        raise SearchError("filters must be an object.")
    for key, value in filters.items():
        if key == "document_ids":
            if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise SearchError("filters.document_ids must be a list of document ids.")
            clauses.append("c.document_id = ANY(%s::bigint[])")
            params.append(value)
        elif not isinstance(key, str) or not key:
            raise SearchError("Filter keys must be metadata field names.")
        elif isinstance(value, dict):
            if not value or set(value) - set(_RANGE_OPS):
                raise SearchError(f"filters.{key} takes {', '.join(_RANGE_OPS)}.")
            clauses.append("jsonb_typeof(c.metadata -> %s) = 'number'")
            params.append(key)
            for op, bound in value.items():
                if isinstance(bound, bool) or not isinstance(bound, int | float):
                    raise SearchError(f"filters.{key}.{op} must be a number.")
                clauses.append(f"(c.metadata ->> %s)::numeric {_RANGE_OPS[op]} %s")
                params += [key, bound]
        elif isinstance(value, list):
            # jsonb: an array contains a scalar equal to one of its elements, so this is "any of"
            clauses.append("%s::jsonb @> (c.metadata -> %s)")
            params += [json.dumps(value), key]
        else:
            clauses.append("c.metadata @> %s::jsonb")
            params.append(json.dumps({key: value}))
    return _Scope(" AND ".join(clauses), params, filtered=bool(filters))


def _embedding_groups(kbs: Iterable[KnowledgeBase]) -> list[list[KnowledgeBase]]:
    """Knowledge bases sharing a model share one query vector and one search."""
    groups: dict[tuple[str, str, int, str], list[KnowledgeBase]] = {}
    for kb in kbs:
        if kb.has_embeddings and kb.embedding_dim in SUPPORTED_DIMENSIONS:
            key = (kb.embedding_provider, kb.embedding_model, kb.embedding_dim, kb.embedding_base_url)
            groups.setdefault(key, []).append(kb)
    return list(groups.values())


# ---------------------------------------------------------------- vector


def exact_max_rows() -> int:
    return int(getattr(settings, "KNOWLEDGE_EXACT_SEARCH_MAX_ROWS", 20_000))


def ef_search_floor() -> int:
    return int(getattr(settings, "KNOWLEDGE_HNSW_EF_SEARCH", 100))


def _vector_candidates(
    vector: list[float], scope: _Scope, kb_ids: list[int], top_k: int, limit: int
) -> list[tuple[int, float]]:
    """[(chunk_id, cosine similarity)] best first, for knowledge bases sharing this vector's model."""
    dim = len(vector)
    where = f"{scope.where} AND c.knowledge_base_id = ANY(%s::bigint[]) AND c.embedding_dim = {dim:d}"
    params = [*scope.params, kb_ids]
    literal = "[" + ",".join(repr(float(x)) for x in vector) + "]"
    ef_search = _plan_vector_search(
        where, params, kb_ids=kb_ids, filtered=scope.filtered, dim=dim, top_k=top_k, limit=limit
    )
    if ef_search is None:
        return _exact(literal, where, params, limit)
    rows = _hnsw(literal, where, params, limit, dim=dim, ef_search=ef_search)
    if len(rows) < limit:  # the filter ate too many candidates: only exact search is complete
        return _exact(literal, where, params, limit)
    return rows


def _plan_vector_search(
    where: str, params: list[Any], *, kb_ids: list[int], filtered: bool, dim: int, top_k: int, limit: int
) -> int | None:
    """None for an exact search, else the ef_search an HNSW scan needs.

    The planner's estimate for the knowledge bases settles the clear cases for free (per-KB
    statistics are good; the org and size clauses follow from the KB, so they are left out rather
    than multiplied in as if independent). Close to the cap, or with filters the planner cannot
    estimate, a COUNT capped at cap + 1 rows decides."""
    cap = exact_max_rows()
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM knowledge_chunk WHERE knowledge_base_id = ANY(%s::bigint[])",
            [kb_ids],
        )
        rows = _plan_rows(cursor.fetchone()[0])
        if rows <= cap / 2:
            return None  # filters can only shrink it
        if filtered or rows <= cap * 2:
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM knowledge_chunk c WHERE {where} LIMIT %s) s",  # noqa: S608  # nosec B608 - fixed columns; values are parameters
                [*params, cap + 1],
            )
            matching = cursor.fetchone()[0]
            if matching <= cap:
                return None
            rows = matching if filtered else max(rows, matching)  # a capped count is a lower bound
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [f"chunk_embedding_hnsw_{dim:d}"])
        row = cursor.fetchone()
    indexed = max(float(row[0]) if row else 0.0, rows, 1.0)
    # An HNSW scan yields ef_search candidates before the WHERE clause; about selectivity * ef_search
    # of them survive it, and OVERSAMPLE * top_k survivors keep recall high.
    needed = math.ceil(top_k * OVERSAMPLE * indexed / rows)
    if needed > HNSW_MAX_EF_SEARCH:
        return None
    return min(HNSW_MAX_EF_SEARCH, max(ef_search_floor(), limit, needed))


def _plan_rows(plan: Any) -> float:
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def _exact(literal: str, where: str, params: list[Any], limit: int) -> list[tuple[int, float]]:
    # `embedding <=> q` on the bare column: no index is built on it, so this is a true scan + sort.
    sql = (
        f"SELECT c.id, c.embedding <=> %s::vector AS distance FROM knowledge_chunk c "  # noqa: S608  # nosec B608 - fixed columns; values are parameters
        f"WHERE {where} ORDER BY distance, c.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [literal, *params, limit])
        return [(row[0], 1.0 - float(row[1])) for row in cursor.fetchall()]


def _hnsw(
    literal: str, where: str, params: list[Any], limit: int, *, dim: int, ef_search: int
) -> list[tuple[int, float]]:
    # The ORDER BY must be the partial index's expression exactly for the planner to use it.
    sql = (
        f"SELECT c.id, c.embedding::vector({dim:d}) <=> %s::vector({dim:d}) AS distance "  # noqa: S608  # nosec B608 - fixed columns; values are parameters
        f"FROM knowledge_chunk c WHERE {where} ORDER BY distance LIMIT %s"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
        cursor.execute(sql, [literal, *params, limit])
        return [(row[0], 1.0 - float(row[1])) for row in cursor.fetchall()]


# ---------------------------------------------------------------- keyword


def _keyword_candidates(query: str, scope: _Scope, limit: int) -> list[tuple[int, float]]:
    sql = (
        "SELECT c.id, ts_rank_cd(c.search_vector, q) AS rank "  # noqa: S608  # nosec B608 - fixed columns; values are parameters
        "FROM knowledge_chunk c, websearch_to_tsquery('english', %s) q "
        f"WHERE {scope.where} AND c.search_vector @@ q ORDER BY rank DESC, c.id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [query, *scope.params, limit])
        return [(row[0], float(row[1])) for row in cursor.fetchall()]


# ---------------------------------------------------------------- fusion


def _fuse(
    lists: list[tuple[str, list[tuple[int, float]]]], *, org_id: int, mode: str, top_k: int
) -> list[SearchHit]:
    """Reciprocal Rank Fusion: score = sum over lists of 1 / (60 + rank)."""
    fused: dict[int, float] = {}
    ranks: dict[int, dict[str, int | None]] = {}
    own_score: dict[int, float] = {}
    for method, candidates in lists:
        for rank, (chunk_id, score) in enumerate(candidates, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            ranks.setdefault(chunk_id, {"vector": None, "keyword": None})[method] = rank
            own_score.setdefault(chunk_id, score)
    best = sorted(fused, key=lambda cid: (-fused[cid], cid))[:top_k]
    rows = {
        row["id"]: row
        for row in Chunk.objects.filter(organization_id=org_id, id__in=best).values(
            "id", "document_id", "document__title", "knowledge_base_id", "metadata", "text"
        )
    }
    hits = []
    for position, chunk_id in enumerate(best, start=1):
        row = rows.get(chunk_id)
        if row is None:  # deleted between the ranking and this read
            continue
        metadata = row["metadata"] or {}
        page = metadata.get("page")
        hits.append(
            SearchHit(
                chunk_id=chunk_id,
                document_id=row["document_id"],
                document_title=row["document__title"],
                knowledge_base_id=row["knowledge_base_id"],
                page=page if isinstance(page, int) else None,
                heading_path=list(metadata.get("heading_path") or []),
                text=row["text"],
                score=fused[chunk_id] if mode == "hybrid" else own_score[chunk_id],
                ranks={**ranks[chunk_id], "fused": position},
            )
        )
    return hits
