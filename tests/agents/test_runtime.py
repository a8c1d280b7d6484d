from __future__ import annotations

import pytest

from agents import services
from agents.models import AgentRun, Message, RunEvent
from agents.runtime.executor import execute_run

pytestmark = pytest.mark.django_db


def _run(agent, user, text):
    run = services.run_create(agent=agent, user=user, input=text)
    execute_run(run.pk)
    run.refresh_from_db()
    return run


def _types(run):
    return list(RunEvent.objects.filter(run=run).values_list("type", flat=True))


def test_text_reply_streams_deltas_and_saves_the_message(llm, make_agent, alice):
    run = _run(make_agent(), alice, "hello there")

    assert run.status == AgentRun.Status.SUCCEEDED, run.error
    assert run.output == "Echo: hello there"
    deltas = "".join(e.payload["text"] for e in RunEvent.objects.filter(run=run, type="delta"))
    assert deltas == "Echo: hello there"
    assert run.input_tokens > 0 and run.output_tokens > 0
    assert Message.objects.get(run=run, role="assistant").content == "Echo: hello there"
    seqs = list(RunEvent.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert _types(run)[-1] == "done"


def test_calculator_tool_call_round_trip(llm, make_agent, alice):
    agent = make_agent(tools=[{"type": "calculator"}])

    run = _run(agent, alice, '[[tool:calculator {"expression": "6*7"}]]')

    assert run.status == AgentRun.Status.SUCCEEDED, run.error
    assert run.output == "Tool result: 42"
    call = RunEvent.objects.get(run=run, type="tool_call")
    assert call.payload["name"] == "calculator" and call.payload["args"] == {"expression": "6*7"}
    assert RunEvent.objects.get(run=run, type="tool_result").payload["result"] == "42"


def test_provider_down_without_fallback_fails_with_reason(llm, make_agent, alice):
    run = _run(make_agent(), alice, "[[error:503]] hi")

    assert run.status == AgentRun.Status.FAILED
    assert "openai/fake-gpt" in run.error


def test_fallback_model_answers_when_primary_fails(llm, make_agent, alice, monkeypatch):
    agent = make_agent(model={"provider": "openai", "name": "fake-gpt",
                              "fallback": {"provider": "demo", "name": "demo-echo"}})

    run = _run(agent, alice, "[[error:500]] hi")

    assert run.status == AgentRun.Status.SUCCEEDED, run.error
    assert "Demo model" in run.output
    assert RunEvent.objects.filter(run=run, type="error", payload__fallback=True).exists()
