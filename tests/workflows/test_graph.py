"""Graph validation (errors per node) and the safe expression language."""

from __future__ import annotations

import pytest

from workflows.expressions import ExpressionError, evaluate, render
from workflows.graph import GraphError, validate_graph

from .conftest import chain, edge, node


def errors_of(nodes, edges, **kwargs):
    with pytest.raises(GraphError) as exc:
        validate_graph({"nodes": nodes, "edges": edges}, **kwargs)
    return exc.value.errors


def test_valid_graph_passes():
    graph = validate_graph(
        {"nodes": [node("t", "trigger", kind="manual"), node("o", "end")], "edges": chain("t", "o")}
    )
    assert graph.next_nodes("t", "out") == ["o"]


def test_unreachable_node_is_reported_on_that_node():
    errors = errors_of(
        [node("t", "trigger", kind="manual"), node("o", "end"), node("lost", "end")], chain("t", "o")
    )
    assert list(errors) == ["lost"]
    assert "not reachable" in errors["lost"][0]


def test_cycle_without_loop_node_is_rejected_but_loop_cycle_is_fine():
    nodes = [
        node("t", "trigger", kind="manual"),
        node("a", "transform", mapping={}),
        node("b", "transform", mapping={}),
    ]
    # mapping {} counts as missing config too; give them something
    nodes[1]["config"]["mapping"] = {"x": "1"}
    nodes[2]["config"]["mapping"] = {"x": "2"}
    errors = errors_of(nodes, [edge("t", "a"), edge("a", "b"), edge("b", "a")])
    assert "cycle" in errors["a"][0] and "cycle" in errors["b"][0]
    loop = node("l", "loop", mode="while", condition="index < 2", max_iterations=3)
    validate_graph(
        {
            "nodes": [*nodes, loop],
            "edges": [edge("t", "l"), edge("l", "a", "body"), edge("a", "b"), edge("b", "l")],
        }
    )


def test_loop_without_maximum_is_rejected():
    errors = errors_of(
        [
            node("t", "trigger", kind="manual"),
            node("l", "loop", mode="foreach", items="{{ input.xs }}"),
            node("b", "end"),
        ],
        [edge("t", "l"), edge("l", "b", "body")],
    )
    assert any("maximum number of iterations" in m for m in errors["l"])


def test_missing_config_unknown_port_and_bad_reference_are_per_node():
    errors = errors_of(
        [
            node("t", "trigger", kind="manual"),
            node("c", "condition"),
            node("x", "transform", mapping={"v": "{{ nodes.ghost.output }}"}),
        ],
        [edge("t", "c"), edge("c", "x", "maybe")],
    )
    assert any("'expression' is required" in m for m in errors["c"])
    assert any("no 'maybe' output" in m for m in errors["c"])
    assert any("'ghost'" in m for m in errors["x"])


def test_no_trigger_and_bad_shapes():
    assert "graph" in errors_of([node("o", "end")], [])
    with pytest.raises(GraphError):
        validate_graph({"nodes": "nope"})
    assert "graph" in errors_of([{"id": "1bad", "type": "end"}], [])
    assert "x" in errors_of([node("t", "trigger", kind="manual"), {"id": "x", "type": "teleport"}], [])


def test_bad_cron_and_timezone():
    errors = errors_of([node("t", "trigger", kind="schedule", cron="every day", timezone="UTC")], [])
    assert "five fields" in errors["t"][0]
    errors = errors_of([node("t", "trigger", kind="schedule", cron="0 9 * * 1", timezone="Mars/Olympus")], [])
    assert "timezone" in errors["t"][0]


@pytest.mark.django_db
def test_references_must_be_in_the_same_org(acme, charlie_org, charlie):
    from agents import services as agent_services

    other = agent_services.agent_create(
        org=charlie_org,
        by=charlie,
        name="Theirs",
        config={"instructions": "x", "model": {"provider": "demo", "name": "demo-echo"}},
    )
    errors = errors_of(
        [node("t", "trigger", kind="manual"), node("a", "agent", agent_id=other.pk)],
        chain("t", "a"),
        org=acme,
    )
    assert "does not exist in this organization" in errors["a"][0]


def test_expressions_evaluate_safely():
    scope = {
        "input": {"n": 3, "tags": ["a", "b"], "text": "Hello"},
        "nodes": {"x": {"output": "PASS!"}},
        "vars": {},
    }
    assert evaluate("input.n > 2 and 'a' in input.tags", scope) is True
    assert evaluate('contains(nodes.x.output, "pass")', scope) is True
    assert evaluate("len(input.tags) * 2", scope) == 4
    assert evaluate("input.missing.deeper", scope) is None
    assert render("{{ input.tags }}", scope) == ["a", "b"]
    assert render("n={{ input.n }} {{ input.tags }}", scope) == 'n=3 ["a", "b"]'
    assert render("{{ secret:API_KEY }}", scope) == "{{ secret:API_KEY }}"  # resolved later, only in headers
    for bad in (
        "__import__('os')",
        "input.__class__",
        "[x for x in input.tags]",
        "lambda: 1",
        "open('/etc/passwd')",
        "'a' * 10**9",
        "input.text.upper()",
    ):
        with pytest.raises(ExpressionError):
            evaluate(bad, scope)
