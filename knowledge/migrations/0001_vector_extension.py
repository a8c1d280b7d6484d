from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector, for knowledge embeddings. On managed PostgreSQL the role needs CREATE on the database."""

    initial = True
    dependencies: list = []
    operations = [VectorExtension()]
