"""Shared fixtures. alice and bob share Acme; charlie has his own org and must see none of Acme's."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.services import api_key_create, organization_create
from tests.factories import MembershipFactory, UserFactory

PASSWORD = "correct-horse-battery"


def pytest_collection_modifyitems(config, items):
    """Browser tests last: they are the slowest, and sync Playwright must not precede asyncio tests."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(autouse=True)
def _fresh_redis():
    """Throttle counters, rate limits and cached sessions live in the test Redis: start every test
    without them. Only the cache's keys go; Celery's and Channels' keys in the same Redis stay."""
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    from agents.runtime.providers import clients_clear

    clients_clear()  # provider credentials are cached per process for a few seconds
    from billing import pricing

    pricing.clear_cache()  # model prices too, for 30 s: a price a test wrote must not outlive it
    yield


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com", name="Alice")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com", name="Bob")


@pytest.fixture
def charlie(db):
    return UserFactory(email="charlie@example.com", name="Charlie")


def fund(org, credits=1000, plan="enterprise"):
    """Put an org on a plan without limits and give it credits, so tests that are not about billing
    are not stopped by it. Billing tests use fresh orgs on the Free plan instead."""
    from billing.ledger import account_for, post
    from billing.models import BillingAccount, Plan

    account_for(org)
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug=plan))
    if credits:
        post(org=org, type="grant", amount=credits, key="test-funds", description="Test credits")
    return org


@pytest.fixture
def acme(alice, bob):
    org = organization_create(name="Acme", owner=alice)
    MembershipFactory(organization=org, user=bob, role=Role.MEMBER)
    return fund(org)


@pytest.fixture
def charlie_org(charlie):
    return fund(organization_create(name="Charlie Co", owner=charlie))


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def alice_api(alice, acme):
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def acme_key(alice, acme):
    key, raw = api_key_create(org=acme, name="ci", by=alice, role=Role.ADMIN)
    return raw


@pytest.fixture(scope="session")
def fake_llm():
    """The OpenAI-compatible fake server from bench/, over real HTTP on loopback."""
    from bench.fake_llm import FakeLLMServer

    server = FakeLLMServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (solo pool, in a thread) consuming the test Redis broker on every queue.

    Tests that use it must commit their data (transactional_db), since the worker has its own connection.
    """
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with start_worker(
        app,
        pool="solo",
        concurrency=1,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=["default", "runs", "ingest"],
    ) as worker:
        yield worker


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll until predicate() is truthy; return its value or fail with a clear message."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After the session, end connections that worker/consumer threads left open, so the test
    database can be dropped cleanly."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
