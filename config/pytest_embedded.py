"""pytest plugin (loaded with `-p config.pytest_embedded`): real PostgreSQL + pgvector and real Redis.

It starts the embedded servers before Django is configured. PostgreSQL is shared with `make run`
(pytest-django creates its own `test_agentos` database); Redis is a separate instance under
`.data/redis-test/`, so tests can flush it freely. With DATABASE_URL / REDIS_URL set, those are used.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    os.environ["TESTING"] = "true"
    os.environ.setdefault("AGNO_TELEMETRY", "false")
    # Playwright's sync API runs an event loop in the test thread; Django must allow ORM calls there.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from config import embedded

    if not os.environ.get("DATABASE_URL"):
        embedded.ensure_postgres()
    if not os.environ.get("REDIS_URL"):
        # One Redis per test database name, so concurrent sessions never share a broker queue.
        name = "redis-test" if embedded.DB_NAME == "agentos" else f"redis-test-{embedded.DB_NAME}"
        embedded.ensure_redis(name)
        os.environ["REDIS_URL"] = embedded.redis_url(name)
