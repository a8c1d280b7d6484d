from __future__ import annotations

import pytest

from agents import services
from agents.models import AgentRun
from agents.runtime.executor import execute_run

pytestmark = pytest.mark.django_db


def _waiting_run(make_agent, alice):
    agent = make_agent(tools=[{"type": "calculator", "ask_before_run": True}])
    run = services.run_create(agent=agent, user=alice, input='[[tool:calculator {"expression": "1+1"}]]')
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == AgentRun.Status.WAITING
    return agent, run


def test_chat_shows_the_approval_question_with_buttons(llm, client, alice, make_agent):
    agent, run = _waiting_run(make_agent, alice)
    client.force_login(alice)

    page = client.get(f"/agents/{agent.pk}/?session={run.session_id}")

    html = page.content.decode()
    assert 'data-testid="approval"' in html
    assert f"/agents/runs/{run.pk}/decide/" in html


def test_approving_from_the_chat_records_the_decision(llm, client, alice, make_agent):
    agent, run = _waiting_run(make_agent, alice)
    client.force_login(alice)

    response = client.post(f"/agents/runs/{run.pk}/decide/", {"decision": "approve"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "Approved" in response.content.decode()
    run.refresh_from_db()
    assert run.paused_state["decision"]["approved"] is True


def test_other_org_cannot_decide(llm, client, alice, charlie, charlie_org, make_agent):
    _, run = _waiting_run(make_agent, alice)
    client.force_login(charlie)

    response = client.post(f"/agents/runs/{run.pk}/decide/", {"decision": "approve"})

    assert response.status_code == 404
    run.refresh_from_db()
    assert "decision" not in run.paused_state
