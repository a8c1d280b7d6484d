"""Starting a run: its trigger step, created pending and queued on commit."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from config import prepared
from workflows.engine.common import _dispatch_on_commit, graph_for
from workflows.graph import Graph
from workflows.models import StepRun, WorkflowRun, WorkflowVersion


def _trigger_for(graph: Graph, source: str, trigger_node: str | None) -> str:
    if trigger_node:
        if trigger_node not in graph.nodes or graph.nodes[trigger_node]["type"] != "trigger":
            raise ValueError(f"{trigger_node!r} is not a trigger of this workflow")
        return trigger_node
    preferred = {
        "manual": ("manual", "api"),
        "test": ("manual", "api", "webhook", "schedule", "integration"),
        "api": ("api", "manual"),
        "schedule": ("schedule",),
        "webhook": ("webhook",),
        "integration": ("integration",),
        "subworkflow": ("manual", "api"),
    }.get(source, ("manual",))
    for kind in preferred:
        found = graph.triggers(kind)
        if found:
            return found[0]
    any_trigger = graph.triggers()
    if not any_trigger:
        raise ValueError("the workflow has no trigger")
    return any_trigger[0]


def start_run(
    *,
    workflow: Any,
    version: WorkflowVersion,
    user: Any,
    input: dict[str, Any],
    source: str,
    trigger_node: str | None = None,
    parent_step: StepRun | None = None,
    keys: tuple[int, int] | None = None,
) -> WorkflowRun:
    """`keys`: the run's and its trigger step's primary keys, when the caller took them already."""
    graph = graph_for(version.pk)
    trigger = _trigger_for(graph, source, trigger_node)
    with transaction.atomic():
        # Every run starts here (a webhook's hundreds a second): both keys in one round trip (or none:
        # the webhook takes them with its read of the workflow), and the two rows sent with the
        # COMMIT, in one flight.
        run_id, step_id = keys or prepared.next_ids(WorkflowRun, StepRun)
        run = WorkflowRun(
            pk=run_id,
            organization_id=workflow.organization_id,
            workflow=workflow,
            version=version,
            source=source,
            user=user,
            parent_step=parent_step,
            input=input,
            context={"vars": {}, "nodes": {}, "loops": {}},
        )
        prepared.insert([run], at_commit=True)
        step = StepRun(pk=step_id, run=run, node_id=trigger, node_type="trigger", input=input)
        prepared.insert([step], at_commit=True)
        _dispatch_on_commit([step.pk])
    return run
