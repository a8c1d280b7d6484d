"""Knowledge search latency and recall at 100k chunks of 384 dims (1M with --rows 1000000).

One organization holds two knowledge bases: a big one (99% of the chunks) and a small one (1%, the
tenant-filtered case). Vectors are clustered (noisy copies of random centres, like real embeddings,
whose neighbourhoods have structure); `--distribution uniform` uses plain random unit vectors, the
worst case for any graph index. Texts are random words, so keyword search has work to do.

For 200 random queries per knowledge base it measures `knowledge.search.search` in vector and hybrid
mode (p50/p95, recall@10 against exact search), and, as references measured in the same run, a bare
SQL round trip and an exact scan (`ORDER BY embedding <=> q` with no index, which is also the ground
truth). Query embedding is excluded: the bench hands search its vectors directly.
Target at 1M: p95 <= 30 ms at recall@10 >= 0.95.

Uses its own database (`benchsearch`); data is generated once in SQL and reused while --rows, --dim
and --distribution stay the same.  Run: python -m bench.bench_search [--rows 100000] [--dim 384]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from typing import Any

from bench.stack import pct

QUERIES = 200
TOP_K = 10
VOCABULARY = 3000
WORDS_PER_CHUNK = 40
CHUNKS_PER_DOCUMENT = 100
NOISE = 0.06  # per-coordinate noise around a centre (unit centre, 384 dims: cosine ~0.7 to it)


def setup_django(db_name: str) -> None:
    """Embedded PostgreSQL and Redis, database `db_name`, migrated; Django configured in-process."""
    os.environ["EMBEDDED_DB_NAME"] = db_name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("AGNO_TELEMETRY", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from config import embedded

    embedded.DB_NAME = db_name
    embedded.ensure_postgres()
    embedded.ensure_redis("redis-bench")
    os.environ["REDIS_URL"] = embedded.redis_url("redis-bench")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


def _literal(v: list[float]) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def _words(rng: random.Random) -> list[str]:
    syllables = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo")
    syllables += ("be", "do", "fu", "gi", "ha", "jo", "pe", "zu")
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _embedding_storage(main: bool) -> str:
    """The embedding column's TOAST storage, after applying --storage-main (an experiment)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if main:
            cursor.execute("ALTER TABLE knowledge_chunk ALTER COLUMN embedding SET STORAGE MAIN")
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'knowledge_chunk'::regclass AND attname = 'embedding'"
        )
        return {"p": "plain", "e": "external", "m": "main", "x": "extended"}[cursor.fetchone()[0]]


def ensure_data(
    *,
    rows: int,
    dim: int,
    distribution: str,
    storage_main: bool = False,
    m: int = 24,
    ef_construction: int = 100,
) -> tuple[Any, Any, Any, list[list[float]], list[str]]:
    """(org, big KB, small KB, centres, vocabulary); regenerates when the parameters changed."""
    from django.db import connection, transaction

    from accounts.models import Organization
    from knowledge.models import Chunk, Document, KnowledgeBase

    rng = random.Random(42)  # noqa: S311 - benchmark data
    centres = [_unit([rng.gauss(0, 1) for _ in range(dim)]) for _ in range(max(10, rows // 100))]
    vocabulary = _words(rng)
    storage = _embedding_storage(storage_main)
    slug = f"bench-search-{rows}-{dim}-{distribution}-{storage}"
    org = Organization.objects.filter(slug=slug).first()
    if org is not None and Chunk.objects.filter(organization=org).count() == rows:
        print(
            f"reusing {rows} chunks ({dim} dims, {distribution}, embedding storage {storage}) in database {connection.settings_dict['NAME']}"
        )
        kbs = list(KnowledgeBase.objects.for_org(org).order_by("id"))
        build_index(dim=dim, m=m, ef_construction=ef_construction)
        return org, kbs[0], kbs[1], centres, vocabulary
    print(f"generating {rows} chunks ({dim} dims, {distribution}, embedding storage {storage}) …", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:  # one dataset at a time: selectivity must mean what it says
        cursor.execute("TRUNCATE knowledge_chunk, knowledge_document, knowledge_knowledgebase CASCADE")
    Organization.objects.filter(slug__startswith="bench-search-").delete()
    org = Organization.objects.create(name="Bench search", slug=slug)
    small_rows = rows // 100
    kbs = []
    for name, count in (("big", rows - small_rows), ("small", small_rows)):
        kb = KnowledgeBase.objects.create(
            organization=org, name=name, embedding_model="text-embedding-3-small", embedding_dim=dim
        )
        docs = Document.objects.bulk_create(
            Document(
                organization=org,
                knowledge_base=kb,
                source=Document.Source.TEXT,
                title=f"{name} {i}",
                sha256=f"{kb.id}-{i}",
                status=Document.Status.READY,
                chunk_count=min(CHUNKS_PER_DOCUMENT, count - i * CHUNKS_PER_DOCUMENT),
            )
            for i in range(math.ceil(count / CHUNKS_PER_DOCUMENT))
        )
        kbs.append((kb, count, docs[0].id))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS chunk_embedding_hnsw_{dim}")
        cursor.execute("CREATE TEMP TABLE bench_centres (id int PRIMARY KEY, v float8[]) ON COMMIT DROP")
        cursor.executemany("INSERT INTO bench_centres VALUES (%s, %s)", list(enumerate(centres)))
        cursor.execute("SELECT setseed(0.42)")
        offset = 0
        for kb, count, first_doc in kbs:
            params = {"org": org.id, "kb": kb.id, "first_doc": first_doc, "count": count, "offset": offset}
            params |= {"ncentres": len(centres), "dim": dim, "noise": NOISE, "vocab": vocabulary}
            cursor.execute(_GENERATE_SQL[distribution], {**params, "nvocab": len(vocabulary)})
            offset += count
    print(f"  inserted in {time.perf_counter() - started:.1f}s", flush=True)
    build_index(dim=dim, m=m, ef_construction=ef_construction)
    return org, kbs[0][0], kbs[1][0], centres, vocabulary


def build_index(*, dim: int, m: int, ef_construction: int) -> None:
    """(Re)builds the partial HNSW index the product searches, unless it exists with these parameters."""
    from django.db import connection

    name = f"chunk_embedding_hnsw_{dim}"
    wanted = {f"m={m}", f"ef_construction={ef_construction}"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [name])
        row = cursor.fetchone()
        if row is not None and wanted <= set(row[0] or []):
            print(f"reusing HNSW index (m={m}, ef_construction={ef_construction})")
            return
        print(f"building the HNSW index (m={m}, ef_construction={ef_construction}) …", flush=True)
        build = time.perf_counter()
        cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute("SET maintenance_work_mem = '6GB'")  # the whole graph in memory: no spilling
        cursor.execute("SET max_parallel_maintenance_workers = 2")
        cursor.execute(
            f"CREATE INDEX {name} ON knowledge_chunk USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
            f"WITH (m = {m:d}, ef_construction = {ef_construction:d}) WHERE embedding_dim = {dim}"
        )
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("VACUUM ANALYZE knowledge_chunk")
    print(f"  index built in {time.perf_counter() - build:.1f}s", flush=True)


# Rows are made in SQL (random_normal, PostgreSQL 16): a clustered vector is its centre plus noise,
# normalised; text is WORDS_PER_CHUNK random words. `g` in each subquery keeps it per row.
_VECTOR_SQL = {
    "clustered": "(SELECT array_agg(ce.v[i] + random_normal(0, %(noise)s) ORDER BY i) "
    "FROM generate_series(1, %(dim)s) i WHERE g >= 0)",
    "uniform": "(SELECT array_agg(random_normal() + 0 * i ORDER BY i) FROM generate_series(1, %(dim)s) i WHERE g >= 0)",
}
_GENERATE_TEMPLATE = """
INSERT INTO knowledge_chunk (organization_id, knowledge_base_id, document_id, ordinal, text, metadata,
                             token_count, embedding, embedding_dim)
SELECT %(org)s, %(kb)s, %(first_doc)s + (g / {per_doc}), mod(g, {per_doc}),
       (SELECT string_agg((%(vocab)s::text[])[1 + floor(random() * %(nvocab)s)::int + 0 * w], ' ')
          FROM generate_series(1, {words}) w WHERE g >= 0),
       jsonb_build_object('page', 1 + mod(g, {per_doc}) / 10, 'source', 'bench'),
       {words},
       (SELECT array_agg(x / sqrt(s.n) ORDER BY o)
          FROM unnest(raw.a) WITH ORDINALITY t(x, o), (SELECT sum(y * y) n FROM unnest(raw.a) y) s)::vector,
       %(dim)s
FROM generate_series(0, %(count)s - 1) g
JOIN bench_centres ce ON ce.id = mod(g + %(offset)s, %(ncentres)s)
CROSS JOIN LATERAL (SELECT {vector} AS a) raw
"""
_GENERATE_SQL = {
    name: _GENERATE_TEMPLATE.format(per_doc=CHUNKS_PER_DOCUMENT, words=WORDS_PER_CHUNK, vector=vector)
    for name, vector in _VECTOR_SQL.items()
}


# ------------------------------------------------------------------ measuring


def _queries(
    n: int, centres: list[list[float]], vocabulary: list[str], distribution: str
) -> list[tuple[str, list[float]]]:
    rng = random.Random(7)  # noqa: S311 - benchmark data
    dim = len(centres[0])
    out = []
    for _ in range(n):
        if distribution == "clustered":
            centre = rng.choice(centres)
            vector = _unit([c + rng.gauss(0, NOISE) for c in centre])
        else:
            vector = _unit([rng.gauss(0, 1) for _ in range(dim)])
        out.append((" ".join(rng.sample(vocabulary, 2)), vector))
    return out


def _sql_ids(org: Any, kb: Any, vector: list[float], ef_search: int | None = None) -> list[int]:
    """Exact top-k (no index: the ground truth), or, with ef_search, what a plain HNSW query with the
    tenant filter returns on pgvector 0.6 (the index scan is filtered afterwards)."""
    from django.db import connection, transaction

    dim = len(vector)
    distance = (
        "embedding <=> %s::vector" if ef_search is None else f"embedding::vector({dim}) <=> %s::vector({dim})"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if ef_search is not None:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search)])
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # force the HNSW index
                cursor.execute("SELECT set_config(%s, 'off', true)", [setting])
        cursor.execute(
            f"SELECT id FROM knowledge_chunk WHERE organization_id = %s AND knowledge_base_id = %s "
            f"AND embedding_dim = {dim} ORDER BY {distance} LIMIT %s",
            [org.id, kb.id, _literal(vector), TOP_K],
        )
        return [row[0] for row in cursor.fetchall()]


def _count_paths() -> dict[str, int]:
    """Counts the vector paths knowledge.search takes: exact, or HNSW with its ef_search."""
    import knowledge.search as ks

    paths: dict[str, int] = {}
    exact, hnsw = ks._exact, ks._hnsw

    def counted_exact(*args: Any, **kwargs: Any) -> Any:
        paths["exact"] = paths.get("exact", 0) + 1
        return exact(*args, **kwargs)

    def counted_hnsw(*args: Any, **kwargs: Any) -> Any:
        key = f"hnsw ef={kwargs['ef_search']}"
        paths[key] = paths.get(key, 0) + 1
        return hnsw(*args, **kwargs)

    ks._exact, ks._hnsw = counted_exact, counted_hnsw  # type: ignore[assignment]
    return paths


def _measure(
    call: Any, workload: list[tuple[str, list[float]]], truths: list[set[int]]
) -> tuple[list[float], float, int]:
    """(latencies in ms, mean recall@10, queries that got fewer than TOP_K rows)."""
    latencies, recalls, short = [], [], 0
    for (text, vector), truth in zip(workload, truths, strict=True):
        started = time.perf_counter()
        ids = call(text, vector)
        latencies.append((time.perf_counter() - started) * 1000)
        recalls.append(len(truth & set(ids)) / max(1, len(truth)))
        short += len(ids) < TOP_K
    return latencies, sum(recalls) / len(recalls), short


def _ground_truth(
    org: Any, kb: Any, workload: list[tuple[str, list[float]]]
) -> tuple[list[float], list[set[int]]]:
    """Exact top-k per query, and how long each exact scan took (ms)."""
    latencies, truths = [], []
    for _, vector in workload:
        started = time.perf_counter()
        truths.append(set(_sql_ids(org, kb, vector)))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, truths


Row = tuple[str, str, list[float], float | None, str]


def run(
    *,
    rows: int,
    dim: int,
    distribution: str,
    queries: int,
    storage_main: bool,
    m: int = 24,
    ef_construction: int = 100,
    ef_sweep: tuple[int, ...] = (),
) -> None:
    from django.conf import settings
    from django.db import connection

    import knowledge.search as ks

    org, big, small, centres, vocabulary = ensure_data(
        rows=rows,
        dim=dim,
        distribution=distribution,
        storage_main=storage_main,
        m=m,
        ef_construction=ef_construction,
    )
    workload = _queries(queries, centres, vocabulary, distribution)
    current: dict[str, list[float]] = {}
    ks.embed_query = lambda *, kb, text: current["vector"]  # type: ignore[assignment]  # embedding excluded
    paths = _count_paths()

    def searcher(kb: Any, mode: str) -> Any:
        def call(text: str, vector: list[float]) -> list[int]:
            current["vector"] = vector
            hits = ks.search(org=org, query=text, knowledge_base_ids=[kb.id], top_k=TOP_K, mode=mode)
            return [h.chunk_id for h in hits]

        return call

    for text, vector in workload[:20]:  # warm caches and connections
        searcher(big, "hybrid")(text, vector)
        searcher(small, "hybrid")(text, vector)
    paths.clear()

    def roundtrip(text: str, vector: list[float]) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return [row[0] for row in cursor.fetchall()]

    nothing = [set[int]() for _ in workload]
    table: list[Row] = [
        ("SQL round trip (SELECT 1)", "-", _measure(roundtrip, workload, nothing)[0], None, "")
    ]
    for label, kb in (
        (f"big KB ({rows - rows // 100} chunks, 99%)", big),
        (f"1% KB ({rows // 100} chunks)", small),
    ):
        exact_ms, truths = _ground_truth(org, kb, workload)
        table.append((f"exact scan, {label}", "seq/bitmap scan", exact_ms, None, ""))
        for mode in ("vector", "hybrid"):
            ms, recall, _ = _measure(searcher(kb, mode), workload, truths)
            path = ", ".join(f"{k} x{v}" if len(paths) > 1 else k for k, v in sorted(paths.items()))
            paths.clear()
            table.append((f"search {mode}, {label}", path, ms, recall if mode == "vector" else None, ""))
        if kb is big:
            floor = settings.KNOWLEDGE_HNSW_EF_SEARCH
            for ef in ef_sweep:  # the product's vector search with another ef_search floor
                settings.KNOWLEDGE_HNSW_EF_SEARCH = ef
                ms, recall, _ = _measure(searcher(kb, "vector"), workload, truths)
                paths.clear()
                table.append(
                    (f"search vector, {label}", f"hnsw ef={ef}", ms, recall, "KNOWLEDGE_HNSW_EF_SEARCH")
                )
            settings.KNOWLEDGE_HNSW_EF_SEARCH = floor
        if kb is small:
            for ef in (100, 1000):
                ms, recall, short = _measure(lambda t, v, e=ef: _sql_ids(org, small, v, e), workload, truths)
                note = f"{short}/{len(workload)} queries got < {TOP_K} rows"
                table.append((f"naive HNSW + filter, {label}", f"hnsw ef={ef}", ms, recall, note))
    _print(table, rows=rows, dim=dim, distribution=distribution, queries=len(workload))


def _print(table: list[Row], **info: Any) -> None:
    print(
        f"\nknowledge search: {info['rows']:,} chunks, {info['dim']} dims ({info['distribution']}), "
        f"{info['queries']} queries, top_k={TOP_K}; latency in ms, in-process (Django ORM + psycopg), "
        f"query embedding excluded"
    )
    header = f"{'case':<42}{'path':<17}{'p50':>8}{'p95':>8}{'recall@10':>11}{'p95/exact':>11}  note"
    print(header)
    print("-" * len(header))
    exact_p95 = None
    for name, path, ms, recall, note in table:
        p50, p95 = pct(ms, 50), pct(ms, 95)
        if name.startswith("exact scan"):
            exact_p95 = p95
        ratio = f"{p95 / exact_p95:.2f}x" if exact_p95 and not name.startswith(("SQL", "exact")) else ""
        rec = "(truth)" if name.startswith("exact") else (f"{recall:.3f}" if recall is not None else "")
        print(f"{name:<42}{path:<17}{p50:>8.2f}{p95:>8.2f}{rec:>11}{ratio:>11}  {note}")
    print(
        "\nexact scan = ORDER BY embedding <=> q over the same filtered rows with no index (the ground truth); "
        "p95/exact compares with the exact scan of the same knowledge base. Target at 1M: p95 <= 30 ms, "
        "recall@10 >= 0.95."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_search", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rows", type=int, default=100_000, help="chunks in total (1,000,000 for the 1M case)"
    )
    parser.add_argument("--dim", type=int, default=384, choices=(384, 768, 1024, 1536))
    parser.add_argument("--distribution", choices=("clustered", "uniform"), default="clustered")
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument(
        "--storage-main",
        action="store_true",
        help="experiment: keep vectors inline in the heap (ALTER ... SET STORAGE MAIN) before generating",
    )
    parser.add_argument("--m", type=int, default=24, help="HNSW m of the index (the migration's is 24)")
    parser.add_argument(
        "--ef-construction", type=int, default=100, help="HNSW ef_construction (the migration's is 100)"
    )
    parser.add_argument(
        "--ef-sweep", default="", help="comma-separated ef_search floors to also measure on the big KB"
    )
    args = parser.parse_args(argv)
    if args.rows >= 500_000:
        # A 1M-chunk index is ~2 GB; with the embedded default (1 GB) every query would page it in.
        os.environ.setdefault("EMBEDDED_PG_SHARED_BUFFERS", "4GB")
    # The storage experiment gets its own database, so the default one keeps the migrated schema.
    setup_django("benchsearch_main" if args.storage_main else "benchsearch")
    run(
        rows=args.rows,
        dim=args.dim,
        distribution=args.distribution,
        queries=args.queries,
        storage_main=args.storage_main,
        m=args.m,
        ef_construction=args.ef_construction,
        ef_sweep=tuple(int(x) for x in args.ef_sweep.split(",") if x.strip()),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
