from django.db import migrations

DIMENSIONS = (384, 768, 1024, 1536)


def _create(dim: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS chunk_embedding_hnsw_{dim} ON knowledge_chunk "
        f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
        f"WHERE embedding_dim = {dim}"
    )


class Migration(migrations.Migration):
    """One partial HNSW index per supported embedding size. Queries must use the same expression,
    `embedding::vector(N) <=> query` with `embedding_dim = N`, for the planner to pick it."""

    dependencies = [("knowledge", "0002_initial")]

    operations = [
        migrations.RunSQL(_create(dim), f"DROP INDEX IF EXISTS chunk_embedding_hnsw_{dim}") for dim in DIMENSIONS
    ]
