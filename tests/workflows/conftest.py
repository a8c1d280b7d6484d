"""Workflow tests run the real engine on a real Celery worker against the fake LLM over HTTP."""

from __future__ import annotations

import pytest

from tests.agents.conftest import llm, make_agent  # noqa: F401 - fixtures shared with the agents tests
from tests.conftest import wait_for
from workflows import services
from workflows.models import WorkflowRun


def node(id, type, **config):
    """A graph node; `retry`, `name` and `node_timeout` (the node's `timeout_seconds`) are node
    fields, the rest is config."""
    extra = {k: config.pop(k) for k in ("retry", "name") if k in config}
    if "node_timeout" in config:
        extra["timeout_seconds"] = config.pop("node_timeout")
    return {"id": id, "type": type, "config": config, "position": {"x": 0, "y": 0}, **extra}


def edge(source, target, port="out"):
    return {"source": source, "target": target, "port": port}


def chain(*ids, port="out"):
    return [edge(a, b, port) for a, b in zip(ids, ids[1:], strict=False)]


def agent_graph(agent_id):
    """trigger -> one agent step -> end: the smallest workflow that spends credits."""
    nodes = [
        node("start", "trigger", kind="manual"),
        node("draft", "agent", agent_id=agent_id, input="{{ input.text }}"),
        node("out", "end", output="{{ last }}"),
    ]
    return {"nodes": nodes, "edges": chain("start", "draft", "out")}


@pytest.fixture
def make_workflow(acme, alice):
    def make(nodes, edges, name="Flow", publish=True, org=None, by=None):
        workflow = services.workflow_create(
            org=org or acme, by=by or alice, name=name, graph={"nodes": nodes, "edges": edges}
        )
        if publish:
            services.workflow_publish(workflow=workflow, by=by or alice)
        workflow.refresh_from_db()
        return workflow

    return make


def finished(run: WorkflowRun, timeout: float = 20.0, statuses=WorkflowRun.FINISHED) -> WorkflowRun:
    def check():
        run.refresh_from_db()
        return run.status in statuses

    wait_for(check, timeout=timeout)
    return run
