from __future__ import annotations

import openai
import pytest
from django.core.management import call_command


def test_openapi_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    text = out.read_text()
    assert "/api/v1/organizations/{org_id}/api-keys/" in text
    assert "X-Session-Token" in text


def test_shared_fake_llm_fixture_answers_the_openai_client_over_http(fake_llm):
    client = openai.OpenAI(base_url=fake_llm.base_url, api_key="test-key")

    reply = client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "[[reply:pong]]"}]
    )

    assert reply.choices[0].message.content == "pong"
    assert reply.usage.completion_tokens >= 1


@pytest.mark.django_db
def test_no_sqlite_anywhere():
    from django.db import connection

    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
