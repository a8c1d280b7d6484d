"""Plan limits: enforced where each resource is created (the service), so the API answers 402 with the
envelope and the pages show the same message, with its upgrade link, beside the form."""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke, organization_create
from agents import services as agents
from agents.models import AgentRun
from billing import limits
from billing.ledger import account_for
from billing.models import BillingAccount, Plan
from integrations.secrets import secret_set
from knowledge.ingest import document_add_text, document_add_url
from knowledge.services import knowledge_base_create
from tests.conftest import fund
from tests.factories import UserFactory
from tests.helpers import as_user, assert_envelope
from workflows import services as workflows

pytestmark = pytest.mark.django_db

UPGRADE = "/billing/plans/"


@pytest.fixture
def dana():
    return UserFactory(email="dana@example.com", name="Dana")


@pytest.fixture
def free_org(dana):
    """A fresh organization: the Free plan (3 agents, 2 workflows, 50 MB, 1 secret, 1 key, 200 runs)."""
    org = organization_create(name="Dana Co", owner=dana)
    account_for(org)
    return org


def set_limits(org, **limits_):
    """The Free plan is admin-editable; tests narrow one limit (rolled back with the test)."""
    plan = account_for(org).plan
    plan.limits = {**plan.limits, **limits_}
    plan.save(update_fields=["limits"])


def make_agents(org, by, n):
    return [agents.agent_create(org=org, by=by, name=f"Agent {i}") for i in range(n)]


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


# ----------------------------------------------------------------- agents


def test_api_refuses_the_fourth_agent_on_free_with_402_and_an_upgrade_link(free_org, dana):
    make_agents(free_org, dana, 3)

    response = as_user(dana).post("/api/v1/agents/", {"name": "Fourth"}, format="json")

    body = assert_envelope(response, 402, "plan_limit")
    assert "The Free plan allows 3 agents" in body["detail"]
    assert "this organization has 3" in body["detail"]
    assert UPGRADE in body["detail"]
    assert free_org.agents.count() == 3


def test_archived_agents_do_not_count(free_org, dana):
    first, *_ = make_agents(free_org, dana, 3)
    agents.agent_archive(agent=first)

    response = as_user(dana).post("/api/v1/agents/", {"name": "Fourth"}, format="json")

    assert response.status_code == 201, response.content


def test_cloning_counts_as_creating(free_org, dana):
    first, *_ = make_agents(free_org, dana, 3)

    response = as_user(dana).post(f"/api/v1/agents/{first.pk}/clone", {}, format="json")

    assert_envelope(response, 402, "plan_limit")
    assert free_org.agents.count() == 3


def test_restoring_an_archived_agent_counts_against_a_full_plan(free_org, dana):
    first, *_ = make_agents(free_org, dana, 3)
    agents.agent_archive(agent=first)
    agents.agent_create(org=free_org, by=dana, name="Replacement")  # the plan is full again

    response = as_user(dana).post(f"/api/v1/agents/{first.pk}/restore", {}, format="json")

    assert_envelope(response, 402, "plan_limit")
    first.refresh_from_db()
    assert first.is_archived


def test_restore_page_shows_the_limit_and_keeps_the_agent_archived(client, free_org, dana):
    first, *_ = make_agents(free_org, dana, 3)
    agents.agent_archive(agent=first)
    agents.agent_create(org=free_org, by=dana, name="Replacement")

    response = _login(client, dana, free_org).post(f"/agents/{first.pk}/restore/", follow=True)

    page = html.unescape(response.content.decode())
    assert "The Free plan allows 3 agents" in page and UPGRADE in page
    first.refresh_from_db()
    assert first.is_archived


def test_restoring_with_room_left_works(free_org, dana):
    first, *_ = make_agents(free_org, dana, 3)
    agents.agent_archive(agent=first)

    response = as_user(dana).post(f"/api/v1/agents/{first.pk}/restore", {}, format="json")

    assert response.status_code == 200, response.content
    first.refresh_from_db()
    assert not first.is_archived


def test_builder_form_shows_the_limit_beside_the_form(client, free_org, dana):
    make_agents(free_org, dana, 3)
    from tests.agents.test_views_builder import _form

    response = _login(client, dana, free_org).post("/agents/new/", _form())

    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert 'role="alert">The Free plan allows 3 agents' in page
    assert UPGRADE in page
    assert free_org.agents.count() == 3


def test_hire_form_shows_the_limit(client, free_org, dana):
    make_agents(free_org, dana, 3)

    response = _login(client, dana, free_org).post("/agents/hire/", {"template": "support", "name": "Sam"})

    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "The Free plan allows 3 agents" in page and UPGRADE in page
    assert not free_org.agents.filter(name="Sam").exists()


def test_another_organizations_agents_do_not_count(free_org, dana, charlie_org, charlie):
    make_agents(charlie_org, charlie, 5)

    response = as_user(dana).post("/api/v1/agents/", {"name": "Mine"}, format="json")

    assert response.status_code == 201


def test_unlimited_plans_create_freely(free_org, dana):
    fund(free_org, credits=0, plan="enterprise")
    make_agents(free_org, dana, 6)

    assert free_org.agents.count() == 6


def test_upgrading_lifts_the_limit(free_org, dana):
    make_agents(free_org, dana, 3)
    BillingAccount.objects.filter(organization=free_org).update(plan=Plan.objects.get(slug="basic"))

    make_agents(free_org, dana, 7)

    assert free_org.agents.count() == 10
    with pytest.raises(limits.PlanLimitReached, match="Basic plan allows 10 agents"):
        agents.agent_create(org=free_org, by=dana, name="Eleventh")


# -------------------------------------------------------------- workflows


def test_api_refuses_the_third_workflow_on_free(free_org, dana):
    for i in range(2):
        workflows.workflow_create(org=free_org, by=dana, name=f"Flow {i}")

    response = as_user(dana).post("/api/v1/workflows/", {"name": "Third"}, format="json")

    body = assert_envelope(response, 402, "plan_limit")
    assert "The Free plan allows 2 workflows" in body["detail"] and UPGRADE in body["detail"]


def test_workflow_create_form_shows_the_limit_beside_the_name(client, free_org, dana):
    for i in range(2):
        workflows.workflow_create(org=free_org, by=dana, name=f"Flow {i}")

    response = _login(client, dana, free_org).post("/workflows/new/", {"name": "Third", "description": ""})

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert 'id="id_name_errors"' in page
    assert "The Free plan allows 2 workflows" in page and UPGRADE in page
    assert free_org.workflows.count() == 2


def test_archived_workflows_do_not_count(free_org, dana):
    first = workflows.workflow_create(org=free_org, by=dana, name="Flow 1")
    workflows.workflow_create(org=free_org, by=dana, name="Flow 2")
    workflows.workflow_archive(workflow=first, by=dana)

    assert workflows.workflow_create(org=free_org, by=dana, name="Flow 3")


def test_restoring_an_archived_workflow_counts_against_a_full_plan(free_org, dana):
    first = workflows.workflow_create(org=free_org, by=dana, name="Flow 1")
    workflows.workflow_create(org=free_org, by=dana, name="Flow 2")
    workflows.workflow_archive(workflow=first, by=dana)
    workflows.workflow_create(org=free_org, by=dana, name="Flow 3")

    response = as_user(dana).post(f"/api/v1/workflows/{first.pk}/restore", {}, format="json")

    body = assert_envelope(response, 402, "plan_limit")
    assert "The Free plan allows 2 workflows" in body["detail"]
    first.refresh_from_db()
    assert first.status == "archived"


# ------------------------------------------------------------ api keys


def test_api_refuses_a_second_active_api_key_on_free(free_org, dana):
    api_key_create(org=free_org, name="one", by=dana, role="admin")

    response = as_user(dana).post(
        f"/api/v1/organizations/{free_org.pk}/api-keys/", {"name": "two", "role": "member"}, format="json"
    )

    body = assert_envelope(response, 402, "plan_limit")
    assert "The Free plan allows 1 active API keys" in body["detail"]
    assert ApiKey.objects.for_org(free_org).count() == 1


def test_a_revoked_key_frees_its_place(free_org, dana):
    key, _ = api_key_create(org=free_org, name="one", by=dana, role="admin")
    api_key_revoke(key=key, by=dana)

    api_key_create(org=free_org, name="two", by=dana, role="admin")

    assert ApiKey.objects.for_org(free_org).active().count() == 1


# ----------------------------------------------------------- integrations


def test_a_new_secret_beyond_the_limit_is_refused_but_updates_pass(free_org, dana):
    secret_set(org=free_org, name="SLACK_TOKEN", value="one", by=dana)

    with pytest.raises(limits.PlanLimitReached) as refused:
        secret_set(org=free_org, name="GITHUB_TOKEN", value="two", by=dana)
    secret_set(org=free_org, name="SLACK_TOKEN", value="rotated", by=dana)

    assert (refused.value.status, refused.value.code) == (402, "plan_limit")
    assert "1 integration secrets" in str(refused.value)
    assert free_org.secrets.count() == 1


# ---------------------------------------------------------- knowledge base


def test_upload_past_the_storage_limit_is_refused_with_402(free_org, dana):
    set_limits(free_org, kb_storage_mb=1)
    kb = knowledge_base_create(org=free_org, by=dana, name="Docs")
    document_add_text(kb=kb, by=dana, title="first", text="a" * 600_000)

    with pytest.raises(limits.PlanLimitReached) as refused:
        document_add_text(kb=kb, by=dana, title="second", text="b" * 600_000)

    assert refused.value.status == 402
    assert "allows 1 MB of knowledge-base documents" in str(refused.value)
    assert "would bring the organization to 1.1 MB" in str(refused.value)
    assert kb.documents.count() == 1


def test_upload_through_the_api_is_refused_with_the_envelope(free_org, dana):
    set_limits(free_org, kb_storage_mb=0)
    kb = knowledge_base_create(org=free_org, by=dana, name="Docs")

    response = as_user(dana).post(
        f"/api/v1/knowledge-bases/{kb.pk}/documents/", {"title": "t", "text": "hello"}, format="json"
    )

    assert_envelope(response, 402, "plan_limit")


def test_a_url_needs_room_left(free_org, dana):
    set_limits(free_org, kb_storage_mb=1)
    kb = knowledge_base_create(org=free_org, by=dana, name="Docs")
    document_add_text(kb=kb, by=dana, title="full", text="a" * (1024 * 1024))

    with pytest.raises(limits.PlanLimitReached):
        document_add_url(kb=kb, by=dana, url="https://example.com/page")


# ------------------------------------------------------------ runs a month


def test_runs_past_the_monthly_limit_are_refused(free_org, dana):
    set_limits(free_org, runs_per_month=2)
    agent = agents.agent_create(org=free_org, by=dana, name="Echo", publish=True)
    for _ in range(2):
        agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)

    response = as_user(dana).post(f"/api/v1/agents/{agent.pk}/run", {"input": "again"}, format="json")

    body = assert_envelope(response, 402, "plan_limit")
    assert "allows 2 agent runs a month" in body["detail"] and "used 2 this month" in body["detail"]
    assert AgentRun.objects.for_org(free_org).count() == 2


def test_last_months_runs_do_not_count(free_org, dana):
    set_limits(free_org, runs_per_month=1)
    agent = agents.agent_create(org=free_org, by=dana, name="Echo", publish=True)
    run = agents.run_create(agent=agent, user=dana, input="hi", enqueue=False)
    AgentRun.objects.filter(pk=run.pk).update(created_at=limits.month_start() - timedelta(minutes=1))

    assert agents.run_create(agent=agent, user=dana, input="hi again", enqueue=False)


# ---------------------------------------------------------------- snapshot


def test_snapshot_reports_limit_used_and_remaining(free_org, dana):
    make_agents(free_org, dana, 2)
    api_key_create(org=free_org, name="one", by=dana, role="admin")

    rows = {row["resource"]: row for row in limits.snapshot(free_org)}

    assert set(rows) == set(limits.RESOURCES)
    assert (rows["agents"]["limit"], rows["agents"]["used"], rows["agents"]["remaining"]) == (3, 2, 1)
    assert rows["api_keys"]["remaining"] == 0
    assert limits.allowed(free_org, "agents") and not limits.allowed(free_org, "api_keys")
    fund(free_org, credits=0, plan="enterprise")
    assert limits.snapshot(free_org)[0]["limit"] is None


def test_unknown_resource_is_a_programming_error(free_org):
    with pytest.raises(ValueError):
        limits.check(free_org, "spaceships")


def test_month_start_is_the_first_of_this_month():
    start = limits.month_start()
    assert start.day == 1 and start <= timezone.now() and (start.hour, start.minute) == (0, 0)


# ------------------------------------------------------------- concurrency


def _race(n, create):
    """n threads create at the same moment; returns how many were allowed and how many refused."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    start = threading.Barrier(n)

    def attempt(i):
        try:
            start.wait()
            create(i)
            return "created"
        except limits.PlanLimitReached:
            return "refused"
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=n) as pool:
        return sorted(pool.map(attempt, range(n)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("resource", ["agents", "workflows", "api_keys"])
def test_concurrent_creations_cannot_both_take_the_last_slot(resource):
    owner = UserFactory(email=f"race-{resource}@example.com")
    org = organization_create(name="Race Co", owner=owner)
    account_for(org)
    create = {
        "agents": lambda i: agents.agent_create(org=org, by=owner, name=f"Agent {i}"),
        "workflows": lambda i: workflows.workflow_create(org=org, by=owner, name=f"Flow {i}"),
        "api_keys": lambda i: api_key_create(org=org, name=f"key {i}", by=owner),
    }[resource]
    set_limits(org, **{resource: 2})
    create(-1)  # one slot taken, one left

    outcome = _race(8, create)

    assert outcome == ["created"] + ["refused"] * 7
    assert limits.usage(org, resource) == 2
