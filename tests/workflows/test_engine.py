"""The engine end to end on a real worker: each node type, branching, loops, joins, failures."""

from __future__ import annotations

import pytest

from workflows import services
from workflows.models import StepRun, WorkflowRun, WorkflowRunEvent

from .conftest import chain, edge, finished, node

pytestmark = pytest.mark.django_db(transaction=True)


def test_transform_chain_succeeds_with_numbered_events(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "shape",
                "transform",
                mapping={"greeting": "Hello {{ input.name }}", "n": "{{ len(input.name) }}"},
            ),
            node("out", "end", output="{{ nodes.shape.output }}"),
        ],
        chain("start", "shape", "out"),
    )
    run = services.run_start(workflow=wf, by=alice, input={"name": "Ada"})
    run = finished(run)
    assert run.status == WorkflowRun.Status.SUCCEEDED, run.error
    assert run.output == {"greeting": "Hello Ada", "n": 3}
    steps = list(run.steps.order_by("id").values_list("node_id", "status", "attempt"))
    assert steps == [("start", "succeeded", 1), ("shape", "succeeded", 1), ("out", "succeeded", 1)]
    seqs = list(WorkflowRunEvent.objects.filter(run=run).values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert WorkflowRunEvent.objects.filter(run=run).order_by("-seq").first().type == "done"
    assert run.started_at and run.completed_at and run.duration_ms is not None


@pytest.mark.parametrize(("amount", "branch"), [(50, "small"), (5000, "big")])
def test_condition_takes_one_branch(make_workflow, alice, celery_worker, amount, branch):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("check", "condition", expression="input.amount > 1000"),
            node("big", "transform", mapping={"route": "big"}),
            node("small", "transform", mapping={"route": "small"}),
        ],
        [edge("start", "check"), edge("check", "big", "true"), edge("check", "small", "false")],
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"amount": amount}))
    assert run.status == "succeeded"
    assert run.output == {"route": branch}
    assert not run.steps.filter(node_id="big" if branch == "small" else "small").exists()


def test_switch_matches_case_or_default(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("sw", "switch", expression="lower(input.kind)", cases=["invoice", "refund"]),
            node("inv", "transform", mapping={"r": "invoice"}),
            node("ref", "transform", mapping={"r": "refund"}),
            node("other", "transform", mapping={"r": "other: {{ input.kind }}"}),
        ],
        [
            edge("start", "sw"),
            edge("sw", "inv", "invoice"),
            edge("sw", "ref", "refund"),
            edge("sw", "other", "default"),
        ],
    )
    assert finished(services.run_start(workflow=wf, by=alice, input={"kind": "REFUND"})).output == {
        "r": "refund"
    }
    assert finished(services.run_start(workflow=wf, by=alice, input={"kind": "hug"})).output == {
        "r": "other: hug"
    }


def test_foreach_loop_runs_body_per_item_and_collects(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("each", "loop", mode="foreach", items="{{ input.names }}", max_iterations=10),
            node("greet", "transform", mapping={"line": "{{ index }}: hi {{ item }}"}),
            node("out", "end", output="{{ nodes.each.output.results }}"),
        ],
        [
            edge("start", "each"),
            edge("each", "greet", "body"),
            edge("greet", "each"),
            edge("each", "out", "done"),
        ],
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"names": ["ann", "bo", "cy"]}))
    assert run.status == "succeeded", run.error
    assert run.output == [{"line": "0: hi ann"}, {"line": "1: hi bo"}, {"line": "2: hi cy"}]
    assert sorted(run.steps.filter(node_id="greet").values_list("iteration", flat=True)) == [0, 1, 2]


def test_foreach_respects_max_iterations(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("each", "loop", mode="foreach", items="{{ input.items }}", max_iterations=2),
            node("body", "transform", mapping={"x": "{{ item }}"}),
        ],
        [edge("start", "each"), edge("each", "body", "body"), edge("body", "each")],
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"items": [1, 2, 3, 4]}))
    assert run.status == "succeeded"
    assert run.steps.filter(node_id="body").count() == 2


def test_node_error_follows_fail_branch(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("bad", "transform", mapping={"x": "{{ 1 / input.zero }}"}),
            node("rescue", "transform", mapping={"recovered": "{{ nodes.bad.output.error }}"}),
        ],
        [edge("start", "bad"), edge("bad", "rescue", "error")],
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"zero": 0}))
    assert run.status == "succeeded"
    assert "Division by zero" in run.output["recovered"]
    assert run.steps.get(node_id="bad").status == StepRun.Status.FAILED


def test_node_error_without_fail_branch_fails_the_run_with_its_message(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("bad", "transform", name="Divide", mapping={"x": "{{ 1 / input.zero }}"}),
            node("after", "transform", mapping={"never": "1"}),
        ],
        chain("start", "bad", "after"),
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"zero": 0}))
    assert run.status == "failed"
    assert run.error.startswith("Step 'Divide' failed:") and "Division by zero" in run.error
    assert not run.steps.filter(node_id="after").exists()
    step = run.steps.get(node_id="bad")
    assert "Division by zero" in step.error and step.logs


def test_set_variable_is_shared_with_later_steps(make_workflow, alice, celery_worker):
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node(
                "remember", "set_variable", variables={"customer": "{{ upper(input.name) }}", "tier": "gold"}
            ),
            node("mid", "transform", mapping={"ignored": "x"}),
            node("out", "end", output="{{ vars.customer }} ({{ vars.tier }})"),
        ],
        chain("start", "remember", "mid", "out"),
    )
    assert finished(services.run_start(workflow=wf, by=alice, input={"name": "zoe"})).output == "ZOE (gold)"


def test_join_any_goes_on_after_first_branch_and_skipped_branches_release_all_join(
    make_workflow, alice, celery_worker
):
    # A condition before an "all" join: only one branch runs; the join still releases.
    wf = make_workflow(
        [
            node("start", "trigger", kind="manual"),
            node("check", "condition", expression="input.flag"),
            node("a", "transform", mapping={"v": "a"}),
            node("b", "transform", mapping={"v": "b"}),
            node("j", "join", mode="all"),
            node("out", "end", output="{{ nodes.j.output.results }}"),
        ],
        [
            edge("start", "check"),
            edge("check", "a", "true"),
            edge("check", "b", "false"),
            edge("a", "j"),
            edge("b", "j"),
            edge("j", "out"),
        ],
    )
    run = finished(services.run_start(workflow=wf, by=alice, input={"flag": True}))
    assert run.status == "succeeded", run.error
    assert run.output == [{"v": "a"}]
