"""Agents list (search, filter, pagination, empty state), hiring from a template, the dashboard card."""

from __future__ import annotations

import pytest

from accounts.models import Role
from agents import services
from agents.models import Agent, AgentVersion
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


def test_empty_list_invites_to_hire(client, alice, acme):
    body = _login(client, alice, acme).get("/agents/").content.decode()

    assert "No agents in Acme yet" in body
    assert "Hire an agent" in body
    assert "<dialog" in body


def test_list_shows_cards_with_level_and_status(client, alice, acme, make_agent):
    make_agent(name="Scout")
    make_agent(name="Drafty", publish=False)

    body = _login(client, alice, acme).get("/agents/").content.decode()

    assert "Scout" in body and "Drafty" in body
    assert "LV1" in body
    assert ">Active<" in body and ">Draft<" in body


def test_search_by_name(client, alice, acme, make_agent):
    make_agent(name="Researcher Rita")
    make_agent(name="Support Sam")

    body = _login(client, alice, acme).get("/agents/?q=rita").content.decode()

    assert "Researcher Rita" in body
    assert "Support Sam" not in body


def test_filter_by_status_and_category(client, alice, acme, make_agent):
    sales = make_agent(name="Seller")
    services.agent_update(agent=sales, by=alice, category="Sales")
    make_agent(name="Writer")
    archived = make_agent(name="Old timer")
    services.agent_archive(agent=archived)

    c = _login(client, alice, acme)
    by_category = c.get("/agents/?category=sales").content.decode()
    by_status = c.get("/agents/?status=archived").content.decode()
    default = c.get("/agents/").content.decode()

    assert "Seller" in by_category and "Writer" not in by_category
    assert "Old timer" in by_status and "Seller" not in by_status
    assert "Old timer" not in default


def test_htmx_filter_returns_only_the_grid(client, alice, acme, make_agent):
    make_agent(name="Scout")

    response = _login(client, alice, acme).get(
        "/agents/?q=sc", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="agent-grid"
    )

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="agent-grid">')
    assert "Scout" in body and "<html" not in body


def test_no_match_shows_clear_filters(client, alice, acme, make_agent):
    make_agent(name="Scout")

    body = _login(client, alice, acme).get("/agents/?q=zzz").content.decode()

    assert "No agents match" in body


def test_list_paginates(client, alice, acme, make_agent):
    for i in range(14):
        make_agent(name=f"Agent {i:02d}")

    c = _login(client, alice, acme)
    first = c.get("/agents/").content.decode()
    second = c.get("/agents/?page=2").content.decode()

    assert "Page 1 of 2" in first
    assert first.count('data-testid="agent-card"') == 12
    assert second.count('data-testid="agent-card"') == 2


def test_other_members_private_agents_are_hidden(client, alice, bob, acme, make_agent):
    secret = make_agent(name="Alice private")
    services.agent_update(agent=secret, by=alice, visibility=Agent.Visibility.PRIVATE)

    c = _login(client, bob, acme)
    body = c.get("/agents/").content.decode()

    assert "Alice private" not in body
    assert c.get(f"/agents/{secret.pk}/").status_code == 404


def test_hire_creates_agent_with_published_version_and_opens_chat(client, alice, acme):
    response = _login(client, alice, acme).post(
        "/agents/hire/",
        {"template": "research", "name": "Rita", "avatar": "🦊", "persona": "Focus on batteries."},
    )

    agent = Agent.objects.get(organization=acme, name="Rita")
    assert response.status_code == 302
    assert response["Location"] == f"/agents/{agent.pk}/"
    assert agent.avatar == "🦊" and agent.role == "research" and agent.category == "Research"
    assert agent.status == Agent.Status.ACTIVE
    version = AgentVersion.objects.get(agent=agent)
    assert agent.published_version_id == version.pk
    assert "Focus on batteries." in version.config["instructions"]
    assert {t["type"] for t in version.config["tools"]} == {"web_search", "datetime", "calculator"}


def test_hire_defaults_name_and_emoji_from_the_template(client, alice, acme):
    _login(client, alice, acme).post("/agents/hire/", {"template": "support"})

    agent = Agent.objects.get(organization=acme)
    assert agent.name == "Customer support agent"
    assert agent.avatar == "🐬"


def test_hire_without_a_role_shows_the_error(client, alice, acme):
    response = _login(client, alice, acme).post("/agents/hire/", {"name": "Nobody"})

    assert response.status_code == 200
    assert "Pick a role first." in response.content.decode()
    assert not Agent.objects.filter(organization=acme).exists()


def test_dashboard_lists_the_orgs_agents(client, alice, acme, make_agent):
    make_agent(name="Scout")
    make_agent(name="Writer")

    body = _login(client, alice, acme).get("/dashboard/").content.decode()

    assert "Scout" in body and "Writer" in body
    assert 'data-testid="agent-count">2<' in body
    assert "You haven't hired any agents yet" not in body


def test_viewer_sees_the_list_without_write_buttons(client, acme, make_agent):
    viewer = MembershipFactory(organization=acme, role=Role.VIEWER).user
    make_agent(name="Scout")

    body = _login(client, viewer, acme).get("/agents/").content.decode()

    assert "Scout" in body
    assert "Build from scratch" not in body
