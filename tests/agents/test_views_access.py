"""Tenant isolation and roles on every agents page: charlie sees none of Acme's ids (404), viewers
read but cannot write (403), and anonymous users are sent to sign in."""

from __future__ import annotations

import pytest

from accounts.models import Role
from agents import services
from agents.models import Agent, AgentContextEntry, AgentRun, Message, RunEvent
from agents.runtime.executor import execute_run
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


@pytest.fixture
def world(alice, acme, make_agent, llm):
    """One of everything in Acme, made by alice."""
    agent = make_agent(name="Acme agent")
    run = services.run_create(agent=agent, user=alice, input="hello")
    execute_run(run.pk)
    memory = services.memory_add(agent=agent, user=alice, content="likes tea")
    entry = services.context_set(agent=agent, key="k", value="v")
    message = Message.objects.get(run=run, role="assistant")
    return {
        "agent": agent.pk,
        "run": run.pk,
        "session": run.session_id,
        "version": agent.published_version_id,
        "memory": memory.pk,
        "entry": entry.pk,
        "message": message.pk,
    }


READ_PAGES = [
    "/agents/{agent}/",
    "/agents/{agent}/?session={session}",
    "/agents/{agent}/runs/",
    "/agents/{agent}/runs/{run}/",
    "/agents/{agent}/tasks/",
    "/agents/{agent}/memory/",
    "/agents/{agent}/tools/",
    "/agents/{agent}/knowledge/",
    "/agents/{agent}/versions/",
    "/agents/{agent}/settings/",
    "/agents/{agent}/edit/",
]
WRITES = [
    ("/agents/{agent}/chat/send/", {"message": "hi"}),
    ("/agents/{agent}/runs/{run}/cancel/", {}),
    ("/agents/{agent}/runs/{run}/regenerate/", {}),
    ("/agents/{agent}/messages/{message}/feedback/", {"value": "1"}),
    ("/agents/{agent}/sessions/{session}/delete/", {}),
    ("/agents/{agent}/tasks/", {"title": "t", "priority": "low"}),
    ("/agents/{agent}/memory/add/", {"content": "x"}),
    ("/agents/{agent}/memory/{memory}/", {"content": "x"}),
    ("/agents/{agent}/memory/{memory}/delete/", {}),
    ("/agents/{agent}/context/", {"key": "a", "value": "b"}),
    ("/agents/{agent}/context/{entry}/delete/", {}),
    ("/agents/{agent}/versions/{version}/publish/", {}),
    ("/agents/{agent}/versions/{version}/rollback/", {}),
    ("/agents/{agent}/settings/", {"name": "x", "avatar": "🤖", "visibility": "org"}),
    ("/agents/{agent}/archive/", {}),
    ("/agents/{agent}/restore/", {}),
    ("/agents/{agent}/clone/", {}),
    ("/agents/{agent}/edit/", {"name": "x"}),
    ("/agents/{agent}/edit/validate/?step=basics", {"name": "x"}),
]


@pytest.mark.parametrize("page", READ_PAGES)
def test_charlie_gets_404_for_acme_pages(client, charlie, charlie_org, world, page):
    response = _login(client, charlie, charlie_org).get(page.format(**world))

    assert response.status_code == 404


@pytest.mark.parametrize(("url", "data"), WRITES)
def test_charlie_gets_404_for_acme_writes(client, charlie, charlie_org, world, url, data):
    before = (Agent.objects.count(), AgentRun.objects.count(), AgentContextEntry.objects.count())

    response = _login(client, charlie, charlie_org).post(url.format(**world), data)

    assert response.status_code == 404
    assert (Agent.objects.count(), AgentRun.objects.count(), AgentContextEntry.objects.count()) == before


def test_charlie_cannot_reference_acme_agents_in_a_handoff(client, charlie, charlie_org, world):
    c = _login(client, charlie, charlie_org)
    c.post("/agents/hire/", {"template": "support"})
    mine = Agent.objects.get(organization=charlie_org)

    body = c.get(f"/agents/{mine.pk}/edit/").content.decode()

    assert "Acme agent" not in body


@pytest.mark.parametrize("page", READ_PAGES[:-1])
def test_viewer_can_read_every_tab(client, acme, world, page):
    viewer = MembershipFactory(organization=acme, role=Role.VIEWER).user
    url = page.format(**world)
    if "session=" in url:
        return  # sessions are per user: the viewer has none of alice's

    assert _login(client, viewer, acme).get(url).status_code == 200


@pytest.mark.parametrize(("url", "data"), WRITES)
def test_viewer_gets_403_on_writes(client, acme, world, url, data):
    viewer = MembershipFactory(organization=acme, role=Role.VIEWER).user
    before = (Agent.objects.count(), AgentRun.objects.count(), RunEvent.objects.count())

    response = _login(client, viewer, acme).post(url.format(**world), data)

    assert response.status_code == 403
    assert (Agent.objects.count(), AgentRun.objects.count(), RunEvent.objects.count()) == before


@pytest.mark.parametrize("url", ["/agents/hire/", "/agents/new/", "/agents/{agent}/edit/"])
def test_viewer_gets_403_on_create_pages(client, acme, world, url):
    viewer = MembershipFactory(organization=acme, role=Role.VIEWER).user

    assert _login(client, viewer, acme).get(url.format(**world)).status_code == 403


def test_anonymous_is_sent_to_sign_in(client, world):
    response = client.get(f"/agents/{world['agent']}/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_unknown_ids_are_404(client, alice, acme, world):
    c = _login(client, alice, acme)

    assert c.get("/agents/999999999/").status_code == 404
    assert c.get(f"/agents/{world['agent']}/runs/999999999/").status_code == 404
