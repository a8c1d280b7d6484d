"""The orchestration patterns of doc 001 §16.2, end to end through agno and the openai client
against the fake LLM over HTTP."""

from __future__ import annotations

import threading

import pytest

from workflows import services
from workflows.models import StepRun

from .conftest import chain, edge, finished, node

pytestmark = pytest.mark.django_db(transaction=True)


def test_triage_routes_to_the_specialist(llm, make_agent, make_workflow, alice, celery_worker):
    billing = make_agent(name="Billing", instructions="You handle billing.")
    tech = make_agent(name="Tech", instructions="You fix technical problems.")
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("triage", "router", labels=["billing", "technical"], input="{{ input.text }}"),
            node(
                "bill",
                "agent",
                agent_id=billing.pk,
                input="[[reply:refund issued]] case {{ nodes.triage.output.label }}",
            ),
            node("fix", "agent", agent_id=tech.pk, input="[[reply:rebooted]] case"),
        ],
        [edge("start", "triage"), edge("triage", "bill", "billing"), edge("triage", "fix", "technical")],
    )
    run = finished(
        services.run_start(
            workflow=wf, by=alice, input={"text": '[[json:{"label": "billing"}]] I was charged twice'}
        )
    )
    assert run.status == "succeeded", run.error
    assert run.output == "refund issued"
    assert run.steps.get(node_id="triage").port == "billing"
    assert not run.steps.filter(node_id="fix").exists()
    assert run.input_tokens > 0 and run.output_tokens > 0


def test_router_without_a_label_takes_default(llm, make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("triage", "router", labels=["billing", "technical"]),
            node("human", "transform", mapping={"to": "a human"}),
        ],
        [edge("start", "triage"), edge("triage", "human", "default")],
    )
    run = finished(
        services.run_start(workflow=wf, by=alice, input={"text": '[[json:{"label": "weather"}]] hi'})
    )
    assert run.status == "succeeded", run.error
    assert run.output == {"to": "a human"}


def test_sequential_chain_with_shared_context(llm, make_agent, make_workflow, alice, celery_worker):
    agents = {name: make_agent(name=name.title()) for name in ("research", "outline", "draft", "edit")}
    nodes = [
        node("start", "trigger", kind="manual"),
        node("topic", "set_variable", variables={"topic": "{{ input.text }}"}),
    ]
    for name, agent in agents.items():
        # Each step sees the shared topic and the step before it; the fake LLM echoes its input.
        nodes.append(
            node(
                name, "agent", agent_id=agent.pk, input=f"{name} on {{{{ vars.topic }}}} from: {{{{ last }}}}"
            )
        )
    nodes.append(node("out", "end", output="{{ nodes.edit.output }}"))
    wf = make_workflow(nodes, chain("start", "topic", "research", "outline", "draft", "edit", "out"))
    run = finished(services.run_start(workflow=wf, by=alice, input={"text": "otters"}), timeout=30)
    assert run.status == "succeeded", run.error
    order = list(run.steps.order_by("started_at").values_list("node_id", flat=True))
    assert order == ["start", "topic", "research", "outline", "draft", "edit", "out"]
    # The edit step saw the draft, which saw the outline, which saw the research: context carried.
    assert run.output.startswith(
        "Echo: edit on otters from: Echo: draft on otters from: Echo: outline on otters"
    )
    assert run.steps.filter(node_type="agent", status="succeeded").count() == 4


def test_reviewer_loop_until_pass_at_most_three_rounds(llm, make_agent, make_workflow, alice, celery_worker):
    writer = make_agent(name="Writer")
    reviewer = make_agent(name="Reviewer")
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "rounds",
                "loop",
                mode="while",
                condition='not contains(nodes.review.output, "PASS")',
                max_iterations=3,
            ),
            node("write", "agent", agent_id=writer.pk, input="draft {{ index }} of {{ input.text }}"),
            # The reviewer passes the second draft.
            node(
                "review",
                "agent",
                agent_id=reviewer.pk,
                input="[[reply:{{ 'PASS' if index == 1 else 'REVISE: more detail' }}]] {{ last }}",
            ),
            node("out", "end", output="{{ nodes.write.output }} / {{ nodes.review.output }}"),
        ],
        [
            edge("start", "rounds"),
            edge("rounds", "write", "body"),
            edge("write", "review"),
            edge("review", "rounds"),
            edge("rounds", "out", "done"),
        ],
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"text": "a poem"}), timeout=30)
    assert run.status == "succeeded", run.error
    assert run.steps.filter(node_id="write").count() == 2
    assert run.output == "Echo: draft 1 of a poem / PASS"
    loop_out = run.steps.filter(node_id="rounds").order_by("-id").first().output
    assert loop_out["iterations"] == 2 and loop_out["exhausted"] is False


def test_reviewer_loop_stops_after_max_rounds(llm, make_agent, make_workflow, alice, celery_worker):
    writer = make_agent(name="Writer")
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "rounds",
                "loop",
                mode="while",
                condition='not contains(nodes.write.output, "PASS")',
                max_iterations=3,
            ),
            node("write", "agent", agent_id=writer.pk, input="[[reply:REVISE]] x"),
        ],
        [edge("start", "rounds"), edge("rounds", "write", "body"), edge("write", "rounds")],
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={}), timeout=30)
    assert run.status == "succeeded"
    assert run.steps.filter(node_id="write").count() == 3
    assert run.output["exhausted"] is True


@pytest.fixture
def threaded_worker(transactional_db):
    """A worker with a thread pool, so parallel branches really run at the same time."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=["default", "runs"],
    ) as worker:
        yield worker


def test_parallel_fan_out_runs_concurrently_and_joins(llm, make_agent, make_workflow, alice, threaded_worker):
    names = ("market", "tech", "legal")
    agents = {n: make_agent(name=n.title()) for n in names}
    nodes = [node("start", "trigger", kind="manual"), node("fan", "parallel")]
    edges = [edge("start", "fan")]
    for n, a in agents.items():
        nodes.append(
            node(n, "agent", agent_id=a.pk, input=f"[[latency:150]][[reply:{n} view]] {{{{ input.text }}}}")
        )
        edges += [edge("fan", n), edge(n, "merge")]
    nodes += [
        node("merge", "join", mode="all"),
        node("out", "end", output="{{ join(nodes.merge.output.results, ' | ') }}"),
    ]
    edges.append(edge("merge", "out"))
    wf = make_workflow(nodes, edges)
    seen = threading.Event()
    run = finished(services.run_start(workflow=wf, by=alice, input={"text": "launch"}), timeout=40)
    seen.set()
    assert run.status == "succeeded", run.error
    assert sorted(run.output.split(" | ")) == ["legal view", "market view", "tech view"]
    branches = list(StepRun.objects.filter(run=run, node_id__in=names))
    assert len(branches) == 3
    # Concurrency: every branch started before any of them finished.
    assert max(s.started_at for s in branches) < min(s.finished_at for s in branches)
    assert StepRun.objects.filter(run=run, node_id="merge").count() == 1


def test_retry_then_fallback_agent(llm, make_agent, make_workflow, alice, celery_worker):
    flaky = make_agent(name="Flaky")
    steady = make_agent(name="Steady")
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "work",
                "agent",
                agent_id=flaky.pk,
                fallback_agent_id=steady.pk,
                input="[[error:500]] {{ input.text }}",
                retry={"max_attempts": 2, "backoff_seconds": 0},
            ),
        ],
        chain("start", "work"),
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"text": "do it"}), timeout=30)
    # The fallback gets the same input; the fake server fails every request with this marker, so
    # both fail and the step is retried once, then the run fails with both reasons visible.
    assert run.status == "failed"
    step = run.steps.get(node_id="work")
    assert step.attempt == 2
    assert "Steady failed" in step.error
    assert any("falling back to agent" in line for line in step.logs)


def test_fallback_agent_takes_over_when_primary_fails(llm, make_agent, make_workflow, alice, celery_worker):
    # The first two requests fail: the primary's call and the openai client's one retry.
    primary = make_agent(name="Primary")
    steady = make_agent(name="Steady")
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "work",
                "agent",
                agent_id=primary.pk,
                fallback_agent_id=steady.pk,
                input="[[error:500:2]] {{ input.text }}",
            ),
        ],
        chain("start", "work"),
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"text": "hello"}), timeout=30)
    assert run.status == "succeeded", run.error
    step = run.steps.get(node_id="work")
    assert step.attempt == 1
    assert any("falling back" in line for line in step.logs)
    assert run.output == "Echo: hello"
    from agents.models import AgentRun

    assert set(AgentRun.objects.filter(source="workflow").values_list("agent__name", "status")) == {
        ("Primary", "failed"),
        ("Steady", "succeeded"),
    }
