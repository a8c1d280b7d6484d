"""The agent page's other tabs: runs and the trace, tasks, memory and context, tools, knowledge,
versions (diff, publish, rollback), settings (archive, restore, clone), and the providers page."""

from __future__ import annotations

import pytest

from accounts.models import Role
from agents import services
from agents.models import Agent, AgentContextEntry, AgentMemory, AgentRun, ProviderKey, Task
from agents.runtime.executor import execute_run
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _login(client, user, org):
    client.force_login(user)
    client.post("/orgs/switch/", {"org": org.pk})
    return client


def test_header_shows_level_xp_bar_and_skills(client, alice, acme, make_agent):
    agent = make_agent()
    services.agent_award_xp(agent_id=agent.pk, xp=150)

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/").content.decode()

    assert "LEVEL 2" in body
    assert 'aria-valuenow="25"' in body  # 150 of 100..300
    assert "Focused: follows multi-step instructions" in body


def test_runs_tab_lists_runs_with_usage(client, alice, acme, make_agent, llm):
    agent = make_agent()
    run = services.run_create(agent=agent, user=alice, input="count my tokens")
    execute_run(run.pk)
    run.refresh_from_db()

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/runs/").content.decode()

    assert f"/agents/{agent.pk}/runs/{run.pk}/" in body
    assert "Succeeded" in body and "openai/fake-gpt" in body
    assert f"{run.input_tokens} / {run.output_tokens}" in body


def test_run_detail_shows_a_trace_tree_with_tool_calls(client, alice, acme, make_agent, llm):
    agent = make_agent(tools=[{"type": "calculator"}])
    run = services.run_create(agent=agent, user=alice, input='[[tool:calculator {"expression": "6*7"}]]')
    execute_run(run.pk)

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/runs/{run.pk}/").content.decode()

    assert body.count('data-testid="trace-model"') == 2
    assert 'data-testid="trace-tool"' in body
    assert "&quot;expression&quot;: &quot;6*7&quot;" in body and "42" in body
    assert 'id="trace-chart-data"' in body and "chart.umd.min.js" in body


def test_run_detail_shows_guardrail_trips_and_errors(client, alice, acme, make_agent, llm):
    agent = make_agent(guardrails={"input": {"pii_redaction": True}})
    run = services.run_create(agent=agent, user=alice, input="mail me at bob@example.com")
    execute_run(run.pk)

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/runs/{run.pk}/").content.decode()

    assert 'data-testid="trace-guardrail"' in body


def test_create_task_starts_a_run_worth_xp(client, alice, acme, make_agent):
    agent = make_agent()

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/tasks/", {"title": "Write a haiku", "details": "About tea", "priority": "high"}
    )

    task = Task.objects.get(agent=agent)
    assert response.status_code == 302
    assert task.status == Task.Status.RUNNING and task.run is not None and task.xp_reward == 50
    body = client.get(f"/agents/{agent.pk}/tasks/").content.decode()
    assert "Write a haiku" in body and f"/runs/{task.run.pk}/" in body


def test_task_without_title_shows_the_error(client, alice, acme, make_agent):
    agent = make_agent()

    response = _login(client, alice, acme).post(
        f"/agents/{agent.pk}/tasks/", {"title": "", "priority": "low"}
    )

    assert response.status_code == 200 and "field-error" in response.content.decode()
    assert not Task.objects.exists()


def test_memory_add_edit_delete(client, alice, acme, make_agent):
    agent = make_agent()
    c = _login(client, alice, acme)

    c.post(f"/agents/{agent.pk}/memory/add/", {"content": "Prefers tea"})
    memory = AgentMemory.objects.get(agent=agent, user=alice)
    c.post(f"/agents/{agent.pk}/memory/{memory.pk}/", {"content": "Prefers green tea"})
    memory.refresh_from_db()
    assert memory.content == "Prefers green tea"
    assert "Prefers green tea" in c.get(f"/agents/{agent.pk}/memory/").content.decode()

    c.post(f"/agents/{agent.pk}/memory/{memory.pk}/delete/")
    assert not AgentMemory.objects.filter(pk=memory.pk).exists()


def test_memories_are_per_user(client, alice, bob, acme, make_agent):
    agent = make_agent()
    bobs = services.memory_add(agent=agent, user=bob, content="Bob secret")
    c = _login(client, alice, acme)

    assert "Bob secret" not in c.get(f"/agents/{agent.pk}/memory/").content.decode()
    assert c.post(f"/agents/{agent.pk}/memory/{bobs.pk}/delete/").status_code == 404
    assert c.post(f"/agents/{agent.pk}/memory/{bobs.pk}/", {"content": "x"}).status_code == 404


def test_context_set_parses_json_and_deletes(client, alice, acme, make_agent):
    agent = make_agent()
    c = _login(client, alice, acme)

    c.post(f"/agents/{agent.pk}/context/", {"key": "products", "value": '["bikes", "helmets"]'})
    c.post(f"/agents/{agent.pk}/context/", {"key": "company", "value": "Acme Bikes"})

    assert AgentContextEntry.objects.get(agent=agent, key="products").value == ["bikes", "helmets"]
    entry = AgentContextEntry.objects.get(agent=agent, key="company")
    assert entry.value == "Acme Bikes"
    c.post(f"/agents/{agent.pk}/context/{entry.pk}/delete/")
    assert not AgentContextEntry.objects.filter(pk=entry.pk).exists()


def test_tools_tab_lists_configured_tools_and_handoffs(client, alice, acme, make_agent):
    helper = make_agent(name="Billing")
    agent = make_agent(
        name="Triage",
        tools=[
            {"type": "calculator"},
            {
                "type": "http",
                "name": "weather",
                "description": "Weather",
                "config": {"url": "https://api.example.com/w"},
            },
        ],
        handoffs=[{"agent_id": helper.pk, "description": "money"}],
    )

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/tools/").content.decode()

    assert "Calculator" in body and "https://api.example.com/w" in body
    assert "Billing" in body and "money" in body


def test_knowledge_tab_flags_knowledge_bases_that_no_longer_exist(client, alice, acme, make_agent):
    agent = make_agent(knowledge={"knowledge_base_ids": [4, 9]})

    body = _login(client, alice, acme).get(f"/agents/{agent.pk}/knowledge/").content.decode()

    assert "Knowledge base #4 no longer exists" in body and "Knowledge base #9 no longer exists" in body
    assert "No knowledge attached" in body  # the attached list itself is in tests/knowledge/test_views.py


def test_versions_diff_publish_and_rollback(client, alice, acme, make_agent):
    agent = make_agent(instructions="Version one.")
    services.agent_update(
        agent=agent, by=alice, config={**agent.latest_version().config, "instructions": "Version two."}
    )
    v1, v2 = agent.versions.order_by("number")
    c = _login(client, alice, acme)

    diff = c.get(f"/agents/{agent.pk}/versions/?a=1&b=2").content.decode()
    assert "-  &quot;instructions&quot;: &quot;Version one.&quot;" in diff
    assert "+  &quot;instructions&quot;: &quot;Version two.&quot;" in diff

    c.post(f"/agents/{agent.pk}/versions/{v2.pk}/publish/")
    agent.refresh_from_db()
    assert agent.published_version == v2

    c.post(f"/agents/{agent.pk}/versions/{v1.pk}/rollback/")
    agent.refresh_from_db()
    assert agent.published_version.number == 3
    assert agent.published_version.config["instructions"] == "Version one."


def test_settings_saves_profile_and_archives_and_restores(client, alice, acme, make_agent):
    agent = make_agent(name="Old name")
    c = _login(client, alice, acme)

    c.post(
        f"/agents/{agent.pk}/settings/",
        {
            "name": "New name",
            "description": "d",
            "avatar": "🦉",
            "role": "r",
            "category": "c",
            "visibility": "private",
        },
    )
    agent.refresh_from_db()
    assert (agent.name, agent.avatar, agent.visibility) == ("New name", "🦉", "private")

    c.post(f"/agents/{agent.pk}/archive/")
    agent.refresh_from_db()
    assert agent.status == Agent.Status.ARCHIVED
    c.post(f"/agents/{agent.pk}/restore/")
    agent.refresh_from_db()
    assert agent.status == Agent.Status.ACTIVE


def test_clone_copies_config_not_runs(client, alice, acme, make_agent):
    agent = make_agent(name="Original", tools=[{"type": "datetime"}])
    services.run_create(agent=agent, user=alice, input="hi")

    response = _login(client, alice, acme).post(f"/agents/{agent.pk}/clone/")

    clone = Agent.objects.get(organization=acme, name="Original (copy)")
    assert response["Location"] == f"/agents/{clone.pk}/settings/"
    assert [t["type"] for t in clone.latest_version().config["tools"]] == ["datetime"]
    assert not AgentRun.objects.filter(agent=clone).exists()


def test_providers_page_shows_configured_status(client, alice, acme, llm):
    body = _login(client, alice, acme).get("/agents/models/").content.decode()

    assert 'data-testid="provider-openai"' in body and "platform key" in body
    assert "✔ Configured" in body and "No key" in body


def test_admin_saves_a_key_masked_and_deletes_it(client, alice, acme):
    c = _login(client, alice, acme)

    c.post(
        "/agents/models/keys/",
        {
            "provider": "anthropic",
            "api_key": "sk-ant-secret-abcd1234",
            "skip_test": "on",
            "action": "save",
        },
    )

    key = ProviderKey.objects.get(organization=acme, provider="anthropic")
    body = c.get("/agents/models/").content.decode()
    assert "sk-ant-secret-abcd1234" not in body and key.key_hint in body
    c.post(f"/agents/models/keys/{key.pk}/delete/")
    assert not ProviderKey.objects.filter(pk=key.pk).exists()


def test_key_test_against_the_fake_server(client, alice, acme, llm):
    response = _login(client, alice, acme).post(
        "/agents/models/keys/",
        {
            "provider": "openai_compatible",
            "api_key": "sk-any",
            "base_url": llm.base_url,
            "action": "test",
        },
    )

    # The fake server listens on loopback, which an org-supplied base URL may not use.
    assert "loopback" in response.content.decode()
    assert not ProviderKey.objects.exists()


def test_members_cannot_manage_keys(client, bob, acme):
    response = _login(client, bob, acme).post(
        "/agents/models/keys/",
        {
            "provider": "anthropic",
            "api_key": "sk-x",
            "skip_test": "on",
            "action": "save",
        },
    )

    assert response.status_code == 403
    assert "Only owners and admins" in client.get("/agents/models/").content.decode()


def test_viewer_reads_tabs_without_forms(client, acme, make_agent):
    viewer = MembershipFactory(organization=acme, role=Role.VIEWER).user
    agent = make_agent()
    c = _login(client, viewer, acme)

    chat = c.get(f"/agents/{agent.pk}/").content.decode()
    tasks = c.get(f"/agents/{agent.pk}/tasks/").content.decode()

    assert "Viewers can read agents but not chat" in chat and 'id="composer"' not in chat
    assert "Start task" not in tasks
