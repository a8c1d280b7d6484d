"""/api/v1/agents/: create, read, update, archive, versions (publish, rollback, diff), clone, context."""

from __future__ import annotations

import pytest

from accounts.models import Role
from agents import services
from agents.models import Agent, AgentContextEntry, AgentRun, ChatSession
from tests.agents.conftest import make_config
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import as_user, assert_envelope, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(acme):
    user = UserFactory(email="victor@example.com")
    MembershipFactory(organization=acme, user=user, role=Role.VIEWER)
    return user


def url(agent, suffix=""):
    return f"/api/v1/agents/{agent.pk}{suffix}"


# ------------------------------------------------------------------ create / list


def test_create_with_defaults_makes_version_one_in_draft(alice_api, acme, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("DEFAULT_LLM_MODEL", raising=False)

    response = alice_api.post("/api/v1/agents/", {"name": "Scout", "avatar": "🦉"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["slug"], body["avatar"], body["status"]) == ("Scout", "scout", "🦉", "draft")
    assert body["latest_version"] == 1 and body["published_version"] is None
    assert body["config"]["model"] == {
        "provider": "demo",
        "name": "demo-echo",
        "temperature": 0.7,
        "max_tokens": None,
        "fallback": None,
    }
    assert (body["level"], body["xp"], body["next_level_xp"]) == (1, 0, 100)
    assert body["skills"] == ["Rookie"]
    assert Agent.objects.for_org(acme).get(pk=body["id"]).created_by.email == "alice@example.com"


def test_create_with_config_and_publish_is_active(alice_api):
    response = alice_api.post(
        "/api/v1/agents/",
        {"name": "Writer", "config": make_config(instructions="Write well."), "publish": True},
        format="json",
    )

    body = response.json()
    assert response.status_code == 201, body
    assert body["status"] == "active" and body["published_version"] == 1
    assert body["config"]["instructions"] == "Write well."


def test_create_rejects_unknown_avatar_and_missing_name(alice_api):
    response = alice_api.post("/api/v1/agents/", {"avatar": "x"}, format="json")

    body = assert_envelope(response, 400, "invalid")
    assert set(body["field_errors"]) == {"name", "avatar"}


def test_create_with_an_unknown_provider_is_a_field_error(alice_api):
    config = make_config(model={"provider": "nope", "name": "x"})

    response = alice_api.post("/api/v1/agents/", {"name": "Bad", "config": config}, format="json")

    body = assert_envelope(response, 400, "invalid")
    assert "config.model.provider" in body["field_errors"]
    assert not Agent.objects.filter(name="Bad").exists()


def test_list_filters_by_status_and_search_and_hides_archived(alice_api, make_agent):
    make_agent(name="Research Bot")
    draft = make_agent(name="Sales Helper", publish=False)
    gone = make_agent(name="Old Research")
    services.agent_archive(agent=gone)

    names = lambda r: sorted(a["name"] for a in r.json()["results"])  # noqa: E731
    assert names(alice_api.get("/api/v1/agents/")) == ["Research Bot", "Sales Helper"]
    assert names(alice_api.get("/api/v1/agents/?q=research")) == ["Research Bot"]
    assert names(alice_api.get("/api/v1/agents/?status=draft")) == [draft.name]
    assert names(alice_api.get("/api/v1/agents/?status=archived")) == ["Old Research"]
    assert_envelope(alice_api.get("/api/v1/agents/?status=bogus"), 400, "invalid")


def test_private_agent_is_visible_only_to_its_creator(alice_api, bob, make_agent):
    agent = make_agent(name="Diary")
    services.agent_update(agent=agent, by=None, visibility="private")

    assert alice_api.get(url(agent)).status_code == 200
    assert_envelope(as_user(bob).get(url(agent)), 404, "not_found")
    assert as_user(bob).get("/api/v1/agents/").json()["results"] == []


def test_api_key_lists_the_keys_org_agents(acme_key, make_agent):
    agent = make_agent()

    response = bearer(acme_key).get("/api/v1/agents/")

    assert [a["id"] for a in response.json()["results"]] == [agent.pk]


# ------------------------------------------------------------- detail / update


def test_detail_shows_versions_level_and_skills(alice_api, make_agent):
    agent = make_agent()
    services.agent_award_xp(agent_id=agent.pk, xp=150)

    body = alice_api.get(url(agent)).json()

    assert body["published_version"] == 1 and body["latest_version"] == 1
    assert (body["level"], body["xp"], body["next_level_xp"], body["level_progress"]) == (2, 150, 300, 25)
    assert body["skills"][-1].startswith("Focused")


def test_patch_profile_changes_in_place_without_a_version(alice_api, make_agent):
    agent = make_agent()

    response = alice_api.patch(url(agent), {"name": "Renamed", "description": "New"}, format="json")

    body = response.json()
    assert response.status_code == 200, body
    assert (body["name"], body["slug"], body["description"]) == ("Renamed", "renamed", "New")
    assert agent.versions.count() == 1


def test_put_config_makes_a_new_draft_version_keeping_the_rest(alice_api, make_agent):
    agent = make_agent(tools=[{"type": "calculator"}])

    response = alice_api.put(url(agent), {"config": {"instructions": "Be brief."}}, format="json")

    body = response.json()
    assert response.status_code == 200, body
    assert body["latest_version"] == 2 and body["published_version"] == 1
    assert body["config"]["instructions"] == "Be brief."
    assert [t["type"] for t in body["config"]["tools"]] == ["calculator"]


def test_invalid_config_leaves_profile_and_versions_unchanged(alice_api, make_agent):
    agent = make_agent(name="Stable")

    response = alice_api.patch(
        url(agent), {"name": "Changed", "config": {"tool_call_limit": 1000}}, format="json"
    )

    body = assert_envelope(response, 400, "invalid")
    assert "config.tool_call_limit" in body["field_errors"]
    agent.refresh_from_db()
    assert agent.name == "Stable" and agent.versions.count() == 1


def test_delete_archives_and_returns_204(alice_api, make_agent):
    agent = make_agent()

    response = alice_api.delete(url(agent))

    assert response.status_code == 204
    agent.refresh_from_db()
    assert agent.status == Agent.Status.ARCHIVED


# ----------------------------------------------------------------- versions


def test_versions_list_newest_first_and_marks_published(alice_api, make_agent):
    agent = make_agent()
    services.version_create(agent=agent, by=None, config=make_config(instructions="v2"), note="second")

    body = alice_api.get(url(agent, "/versions")).json()

    assert [(v["number"], v["is_published"], v["note"]) for v in body["results"]] == [
        (2, False, "second"),
        (1, True, "Created"),
    ]


def test_version_detail_with_diff(alice_api, make_agent):
    agent = make_agent(instructions="Old words.")
    services.version_create(agent=agent, by=None, config=make_config(instructions="New words."))

    body = alice_api.get(url(agent, "/versions/2?diff_with=1")).json()

    assert body["number"] == 2 and body["config"]["instructions"] == "New words."
    assert body["diff"][:2] == ["--- v1", "+++ v2"]
    assert '-  "instructions": "Old words.",' in body["diff"]
    assert '+  "instructions": "New words.",' in body["diff"]


def test_unknown_version_is_404(alice_api, make_agent):
    agent = make_agent()

    assert_envelope(alice_api.get(url(agent, "/versions/9")), 404, "not_found")
    assert_envelope(alice_api.get(url(agent, "/versions/1?diff_with=9")), 404, "not_found")


def test_publish_defaults_to_the_latest_version(alice_api, make_agent):
    agent = make_agent(publish=False)
    services.version_create(agent=agent, by=None, config=make_config(instructions="v2"))

    response = alice_api.post(url(agent, "/publish"), {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["published_version"] == 2 and response.json()["status"] == "active"


def test_publish_a_given_version(alice_api, make_agent):
    agent = make_agent()
    services.version_create(agent=agent, by=None, config=make_config(instructions="v2"))

    response = alice_api.post(url(agent, "/publish"), {"version": 1}, format="json")

    assert response.json()["published_version"] == 1


def test_rollback_copies_the_old_config_into_a_new_published_version(alice_api, make_agent):
    agent = make_agent(instructions="first")
    services.version_create(agent=agent, by=None, config=make_config(instructions="second"))

    response = alice_api.post(url(agent, "/rollback"), {"version": 1}, format="json")

    body = response.json()
    assert response.status_code == 200, body
    assert body["published_version"] == 3 and body["latest_version"] == 3
    assert body["config"]["instructions"] == "first"
    assert agent.versions.get(number=3).note == "Rollback to v1"


# -------------------------------------------------------------------- clone


def test_clone_copies_config_tools_and_context_not_runs_or_sessions(alice_api, alice, make_agent):
    agent = make_agent(name="Original", tools=[{"type": "calculator"}])
    services.context_set(agent=agent, key="company", value="Acme")
    services.run_create(agent=agent, user=alice, input="hello")

    response = alice_api.post(url(agent, "/clone"), {"name": "Twin"}, format="json")

    body = response.json()
    assert response.status_code == 201, body
    clone = Agent.objects.get(pk=body["id"])
    assert body["name"] == "Twin" and body["status"] == "draft"
    assert [t["type"] for t in body["config"]["tools"]] == ["calculator"]
    assert list(clone.context_entries.values_list("key", "value")) == [("company", "Acme")]
    assert not AgentRun.objects.filter(agent=clone).exists()
    assert not ChatSession.objects.filter(agent=clone).exists()


# ------------------------------------------------------------------ context


def test_context_set_list_replace_and_delete(alice_api, make_agent):
    agent = make_agent()
    context = url(agent, "/context")

    assert alice_api.post(context, {"key": "tone", "value": "formal"}, format="json").status_code == 200
    assert (
        alice_api.put(context, {"key": "tone", "value": {"style": "casual"}}, format="json").status_code
        == 200
    )
    alice_api.post(context, {"key": "audience", "value": ["devs"]}, format="json")

    listed = alice_api.get(context).json()
    assert [(e["key"], e["value"]) for e in listed] == [("audience", ["devs"]), ("tone", {"style": "casual"})]
    assert alice_api.delete(context + "?key=tone").status_code == 204
    assert list(AgentContextEntry.objects.filter(agent=agent).values_list("key", flat=True)) == ["audience"]
    assert_envelope(alice_api.delete(context + "?key=tone"), 404, "not_found")
    assert_envelope(alice_api.delete(context), 400, "invalid")


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize(
    "method,suffix,payload",
    [
        ("patch", "", {"name": "x"}),
        ("delete", "", None),
        ("post", "/clone", {}),
        ("post", "/publish", {}),
        ("post", "/rollback", {"version": 1}),
        ("post", "/context", {"key": "k", "value": 1}),
    ],
)
def test_viewer_cannot_write(viewer, make_agent, method, suffix, payload):
    agent = make_agent()

    response = getattr(as_user(viewer), method)(url(agent, suffix), payload, format="json")

    assert_envelope(response, 403, "permission_denied")


def test_viewer_cannot_create_but_can_read(viewer, make_agent):
    agent = make_agent()
    client = as_user(viewer)

    assert_envelope(client.post("/api/v1/agents/", {"name": "x"}, format="json"), 403, "permission_denied")
    assert client.get(url(agent)).status_code == 200
    assert client.get(url(agent, "/versions")).status_code == 200
