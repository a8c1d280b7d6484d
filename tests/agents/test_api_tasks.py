"""/api/v1/tasks/: assign work to an agent, it runs in the background, completion earns XP."""

from __future__ import annotations

import pytest

from agents import services
from agents.models import AgentRun, Task
from tests.conftest import wait_for
from tests.helpers import assert_envelope


def task_status(client, task_id):
    return client.get(f"/api/v1/tasks/{task_id}").json()["status"]


def test_task_runs_to_completion_and_awards_xp_and_a_level(llm, make_agent, alice_api, celery_worker):
    agent = make_agent()

    ids = []
    for title in ("Write a post", "Write another"):
        response = alice_api.post(
            "/api/v1/tasks/", {"agent_id": agent.pk, "title": title, "priority": "urgent"}, format="json"
        )
        assert response.status_code == 201, response.content
        assert response.json()["xp_reward"] == 100
        ids.append(response.json()["id"])

    for task_id in ids:
        wait_for(lambda task_id=task_id: task_status(alice_api, task_id) == "completed")
    detail = alice_api.get(f"/api/v1/agents/{agent.pk}").json()
    assert (detail["xp"], detail["level"]) == (200, 2)
    assert detail["skills"][-1].startswith("Focused")
    assert alice_api.get(f"/api/v1/tasks/{ids[0]}").json()["xp_awarded"] == 100


def test_task_logs_show_the_runs_events(llm, make_agent, alice_api, celery_worker):
    agent = make_agent()
    task_id = alice_api.post(
        "/api/v1/tasks/", {"agent_id": agent.pk, "title": "Summarize", "details": "Q3 numbers"}, format="json"
    ).json()["id"]
    wait_for(lambda: task_status(alice_api, task_id) == "completed")

    logs = alice_api.get(f"/api/v1/tasks/{task_id}/logs").json()

    assert (logs["status"], logs["run_status"], logs["error"]) == ("completed", "succeeded", "")
    types = [e["type"] for e in logs["events"]]
    assert types[0] == "status" and "delta" in types and types[-1] == "done"
    text = "".join(e["payload"]["text"] for e in logs["events"] if e["type"] == "delta")
    assert text.startswith("Echo: Task: Summarize")


@pytest.mark.django_db
def test_unknown_priority_is_400(make_agent, alice_api):
    agent = make_agent()

    response = alice_api.post(
        "/api/v1/tasks/", {"agent_id": agent.pk, "title": "x", "priority": "asap"}, format="json"
    )

    assert "priority" in assert_envelope(response, 400, "invalid_choice")["field_errors"]
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_task_for_an_archived_agent_is_409_and_nothing_is_left(make_agent, alice_api):
    agent = make_agent()
    services.agent_archive(agent=agent)

    response = alice_api.post("/api/v1/tasks/", {"agent_id": agent.pk, "title": "x"}, format="json")

    assert_envelope(response, 409, "agent_archived")
    assert not Task.objects.exists() and not AgentRun.objects.exists()


@pytest.mark.django_db
def test_list_filters_by_agent_and_status(make_agent, alice, alice_api):
    one, two = make_agent(name="One"), make_agent(name="Two")
    services.task_create(agent=one, by=alice, title="first")
    services.task_create(agent=two, by=alice, title="second")

    listed = alice_api.get(f"/api/v1/tasks/?agent={one.pk}&status=running").json()["results"]

    assert [t["title"] for t in listed] == ["first"]
    assert alice_api.get("/api/v1/tasks/?status=completed").json()["results"] == []


@pytest.mark.django_db
def test_edit_only_while_pending(make_agent, alice, alice_api):
    agent = make_agent()
    started = services.task_create(agent=agent, by=alice, title="started")
    pending = Task.objects.create(organization=agent.organization, agent=agent, title="later")

    edited = alice_api.patch(
        f"/api/v1/tasks/{pending.pk}", {"title": "sooner", "details": "now"}, format="json"
    )
    refused = alice_api.patch(f"/api/v1/tasks/{started.pk}", {"title": "changed"}, format="json")

    assert edited.status_code == 200 and edited.json()["title"] == "sooner"
    assert_envelope(refused, 409, "task_started")
    started.refresh_from_db()
    assert started.title == "started"


@pytest.mark.django_db
def test_delete_cancels_the_unfinished_run(make_agent, alice, alice_api):
    agent = make_agent()
    task = services.task_create(agent=agent, by=alice, title="doomed")

    response = alice_api.delete(f"/api/v1/tasks/{task.pk}")

    assert response.status_code == 204
    assert not Task.objects.filter(pk=task.pk).exists()
    assert AgentRun.objects.get(pk=task.run_id).status == "cancelled"
