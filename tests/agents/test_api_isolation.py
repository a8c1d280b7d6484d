"""Tenant isolation and roles on every agents endpoint: charlie gets a 404 for each of alice's ids, and a
viewer in alice's org may read but never write."""

from __future__ import annotations

import pytest

from accounts.models import Role
from agents import services
from agents.models import Agent, AgentMemory, Message, ProviderKey
from agents.runtime.executor import execute_run
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import as_user, assert_envelope

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(llm, make_agent, acme, alice):
    """One of everything in Acme, made by alice."""
    helper = make_agent(name="Helper")
    agent = make_agent(
        name="Main",
        tools=[{"type": "calculator", "id": "tool1"}],
        handoffs=[{"id": "hand1", "agent_id": helper.pk, "description": "help"}],
    )
    services.context_set(agent=agent, key="company", value="Acme")
    run = services.run_create(agent=agent, user=alice, input="hi")
    execute_run(run.pk)
    task = services.task_create(agent=agent, by=alice, title="Do it")
    memory = services.memory_add(agent=agent, user=alice, content="likes tea")
    key = ProviderKey.objects.create(
        organization=acme, provider="anthropic", encrypted_key="x", key_hint="sk-…x"
    )
    return {
        "agent": agent.pk,
        "run": run.pk,
        "session": run.session_id,
        "message": Message.objects.get(run=run, role="assistant").pk,
        "task": task.pk,
        "memory": memory.pk,
        "key": key.pk,
    }


# (method, path, body) with {agent}, {run}, ... filled from the world
ENDPOINTS = [
    ("get", "agents/{agent}", None),
    ("patch", "agents/{agent}", {"name": "x"}),
    ("put", "agents/{agent}", {"config": {"instructions": "x"}}),
    ("delete", "agents/{agent}", None),
    ("post", "agents/{agent}/clone", {}),
    ("post", "agents/{agent}/run", {"input": "hi"}),
    ("get", "agents/{agent}/versions", None),
    ("get", "agents/{agent}/versions/1", None),
    ("post", "agents/{agent}/publish", {"version": 1}),
    ("post", "agents/{agent}/rollback", {"version": 1}),
    ("get", "agents/{agent}/context", None),
    ("post", "agents/{agent}/context", {"key": "k", "value": 1}),
    ("delete", "agents/{agent}/context?key=company", None),
    ("get", "agents/{agent}/handoffs", None),
    ("post", "agents/{agent}/handoffs", {"agent_id": 1}),
    ("put", "agents/{agent}/handoffs/hand1", {"description": "x"}),
    ("delete", "agents/{agent}/handoffs/hand1", None),
    ("get", "agents/{agent}/tools", None),
    ("post", "agents/{agent}/tools", {"type": "datetime"}),
    ("put", "agents/{agent}/tools/tool1", {"ask_before_run": True}),
    ("delete", "agents/{agent}/tools/tool1", None),
    ("get", "agents/{agent}/memory", None),
    ("post", "agents/{agent}/memory", {"content": "x"}),
    ("put", "agents/{agent}/memory/{memory}", {"content": "x"}),
    ("delete", "agents/{agent}/memory/{memory}", None),
    ("delete", "users/api-keys/{key}", None),
    ("get", "runs/?agent={agent}", None),
    ("get", "runs/{run}", None),
    ("get", "runs/{run}/events", None),
    ("post", "runs/{run}/cancel", None),
    ("get", "sessions/?agent={agent}", None),
    ("get", "sessions/{session}", None),
    ("patch", "sessions/{session}", {"title": "x"}),
    ("delete", "sessions/{session}", None),
    ("get", "sessions/{session}/messages", None),
    ("post", "messages/{message}/feedback", {"value": 1}),
    ("get", "tasks/?agent={agent}", None),
    ("post", "tasks/", {"agent_id": "{agent}", "title": "x"}),
    ("get", "tasks/{task}", None),
    ("patch", "tasks/{task}", {"title": "x"}),
    ("delete", "tasks/{task}", None),
    ("get", "tasks/{task}/logs", None),
]
WRITES = [e for e in ENDPOINTS if e[0] != "get"]


def _call(client, world, method, path, body):
    url = "/api/v1/" + path.format(**world)
    if isinstance(body, dict):
        body = {k: int(v.format(**world)) if isinstance(v, str) and "{" in v else v for k, v in body.items()}
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("method,path,body", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_charlie_gets_404_for_alices_ids(world, charlie, charlie_org, method, path, body):
    response = _call(as_user(charlie), world, method, path, body)

    assert_envelope(response, 404, "not_found")
    agent = Agent.objects.get(pk=world["agent"])
    assert agent.status != Agent.Status.ARCHIVED and agent.versions.count() == 1
    assert AgentMemory.objects.get(pk=world["memory"]).content == "likes tea"


@pytest.mark.parametrize("path", ["agents/", "runs/", "sessions/", "tasks/", "users/api-keys"])
def test_charlies_lists_hold_nothing_of_acme(world, charlie, charlie_org, path):
    body = as_user(charlie).get("/api/v1/" + path).json()

    assert (body["results"] if isinstance(body, dict) else body) == []


def test_charlie_cannot_pick_acme_with_the_header(world, charlie, charlie_org, acme):
    response = as_user(charlie).get("/api/v1/agents/", HTTP_X_ORGANIZATION=str(acme.pk))

    assert_envelope(response, 404, "not_found")


@pytest.fixture
def viewer(acme):
    user = UserFactory(email="victor@example.com")
    MembershipFactory(organization=acme, user=user, role=Role.VIEWER)
    return user


@pytest.mark.parametrize("method,path,body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_viewer_gets_403_on_every_write(world, viewer, method, path, body):
    response = _call(as_user(viewer), world, method, path, body)

    assert_envelope(response, 403, "permission_denied")
    assert Agent.objects.get(pk=world["agent"]).versions.count() == 1


@pytest.mark.parametrize(
    "method,path,body", [e for e in ENDPOINTS if e[0] == "get" and "session" not in e[1]]
)
def test_viewer_can_read(world, viewer, method, path, body):
    assert _call(as_user(viewer), world, method, path, body).status_code == 200
