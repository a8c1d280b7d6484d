"""A workflow to hang rows on, for the tests of config.prepared's writes and prepared statements."""

from __future__ import annotations

from typing import Any

import pytest

from workflows import services
from workflows.models import WorkflowRun

GRAPH = {
    "nodes": [
        {"id": "start", "type": "trigger", "config": {"kind": "manual"}, "position": {"x": 0, "y": 0}},
        {"id": "out", "type": "end", "config": {"output": "{{ input }}"}, "position": {"x": 0, "y": 0}},
    ],
    "edges": [{"source": "start", "target": "out", "port": "out"}],
}


@pytest.fixture
def workflow(acme, alice):
    return services.workflow_create(org=acme, by=alice, name="Writes", graph=GRAPH)


def new_run(workflow: Any, **fields: Any) -> WorkflowRun:
    """An unsaved run of the workflow's first version."""
    fields.setdefault("input", {"text": "hi", "n": [1, 2]})
    return WorkflowRun(
        organization_id=workflow.organization_id,
        workflow=workflow,
        version=workflow.versions.first(),
        **fields,
    )
