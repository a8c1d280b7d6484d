"""/api/v1/sessions/ (your conversations, their messages, feedback) and per-user agent memory."""

from __future__ import annotations

import pytest

from agents import services
from agents.models import AgentMemory, AgentRun, ChatSession, Message
from agents.runtime.executor import execute_run
from tests.helpers import as_user, assert_envelope, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(llm, make_agent, alice):
    """A finished exchange between alice and an agent."""
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="hello")
    execute_run(run.pk)
    run.refresh_from_db()
    return run


# ------------------------------------------------------------------ sessions


def test_sessions_list_only_your_own_and_filters_by_agent(chat, bob, make_agent, alice_api, alice):
    other = make_agent(name="Other")
    services.run_create(agent=other, user=alice, input="there")
    services.run_create(agent=chat.agent, user=bob, input="bobs")

    mine = alice_api.get("/api/v1/sessions/").json()["results"]
    filtered = alice_api.get(f"/api/v1/sessions/?agent={chat.agent_id}").json()["results"]

    assert sorted(s["title"] for s in mine) == ["hello", "there"]
    assert [(s["id"], s["agent_id"]) for s in filtered] == [(chat.session_id, chat.agent_id)]


def test_session_messages_in_order(chat, alice_api):
    body = alice_api.get(f"/api/v1/sessions/{chat.session_id}/messages").json()

    assert [(m["role"], m["content"]) for m in body["results"]] == [
        ("user", "hello"),
        ("assistant", "Echo: hello"),
    ]
    assert body["results"][1]["run_id"] == chat.pk


def test_rename_and_delete_session(chat, alice_api):
    url = f"/api/v1/sessions/{chat.session_id}"

    renamed = alice_api.patch(url, {"title": "Greetings"}, format="json")

    assert renamed.json()["title"] == "Greetings"
    assert alice_api.delete(url).status_code == 204
    assert not ChatSession.objects.filter(pk=chat.session_id).exists()
    assert AgentRun.objects.filter(pk=chat.pk).exists()  # the run's record stays


def test_bob_cannot_see_alices_conversation(chat, bob):
    client = as_user(bob)

    assert_envelope(client.get(f"/api/v1/sessions/{chat.session_id}"), 404, "not_found")
    assert_envelope(client.get(f"/api/v1/sessions/{chat.session_id}/messages"), 404, "not_found")
    assert client.get("/api/v1/sessions/").json()["results"] == []


def test_api_key_sees_its_creators_conversations(chat, acme_key):
    body = bearer(acme_key).get("/api/v1/sessions/").json()

    assert [s["id"] for s in body["results"]] == [chat.session_id]


def test_a_key_whose_creator_left_no_longer_acts_as_them(chat, acme, bob):
    from accounts.models import Membership, Role
    from accounts.services import api_key_create

    Membership.objects.update_or_create(organization=acme, user=bob, defaults={"role": Role.ADMIN})
    _, raw = api_key_create(org=acme, name="bob's", by=bob, role=Role.MEMBER)
    services.run_create(agent=chat.agent, user=bob, input="bob's question")
    assert len(bearer(raw).get("/api/v1/sessions/").json()["results"]) == 1

    Membership.objects.filter(organization=acme, user=bob).delete()

    assert_envelope(bearer(raw).get("/api/v1/sessions/"), 403, "permission_denied")


# ------------------------------------------------------------------ feedback


def test_feedback_on_an_answer(chat, alice_api):
    answer = Message.objects.get(run=chat, role="assistant")

    response = alice_api.post(f"/api/v1/messages/{answer.pk}/feedback", {"value": -1}, format="json")

    assert response.status_code == 200, response.content
    answer.refresh_from_db()
    assert answer.feedback == -1 and response.json()["feedback"] == -1


def test_feedback_validation(chat, alice_api, bob):
    answer = Message.objects.get(run=chat, role="assistant")
    question = Message.objects.get(run=chat, role="user")

    assert_envelope(
        alice_api.post(f"/api/v1/messages/{answer.pk}/feedback", {"value": 5}, format="json"),
        400,
        "invalid_choice",
    )
    assert_envelope(
        alice_api.post(f"/api/v1/messages/{question.pk}/feedback", {"value": 1}, format="json"),
        400,
        "invalid",
    )
    assert_envelope(
        as_user(bob).post(f"/api/v1/messages/{answer.pk}/feedback", {"value": 1}, format="json"),
        404,
        "not_found",
    )


# -------------------------------------------------------------------- memory


def test_memory_crud_is_per_user(make_agent, alice, bob, alice_api):
    agent = make_agent()
    services.memory_add(agent=agent, user=bob, content="Bob likes tea")
    base = f"/api/v1/agents/{agent.pk}/memory"

    created = alice_api.post(base, {"content": "Alice prefers short answers"}, format="json")
    memory_id = created.json()["id"]
    edited = alice_api.put(f"{base}/{memory_id}", {"content": "Alice prefers bullet points"}, format="json")
    listed = alice_api.get(base).json()["results"]

    assert created.status_code == 201 and edited.status_code == 200
    assert [m["content"] for m in listed] == ["Alice prefers bullet points"]
    bobs = AgentMemory.objects.get(user=bob)
    assert_envelope(alice_api.put(f"{base}/{bobs.pk}", {"content": "x"}, format="json"), 404, "not_found")
    assert_envelope(alice_api.delete(f"{base}/{bobs.pk}"), 404, "not_found")
    assert alice_api.delete(f"{base}/{memory_id}").status_code == 204
    assert list(AgentMemory.objects.values_list("content", flat=True)) == ["Bob likes tea"]


def test_blank_memory_is_refused(make_agent, alice_api):
    agent = make_agent()

    response = alice_api.post(f"/api/v1/agents/{agent.pk}/memory", {"content": "  "}, format="json")

    assert "content" in assert_envelope(response, 400, "blank")["field_errors"]
