"""Workflow run events: numbered rows in `WorkflowRunEvent`, then a notice on `workflow_run.<id>`.

Several workers write to one run at once (parallel branches), so the next number is taken in SQL in
the same statement that inserts the row. Live clients get the event in the channel message; a client
that missed some replays them from the table by sequence number.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.utils import timezone

from agents.runtime.events import _get_publisher

# Event types: run (status changes), step_started, step_succeeded, step_failed, step_waiting,
# step_retry, step_cancelled, log, done (the last one; payload has the final status).

_INSERT = """
WITH s AS (
    UPDATE workflows_workflowrun SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq
)
INSERT INTO workflows_workflowrunevent (run_id, seq, type, step_id, node_id, payload, created_at)
SELECT %s, s.last_seq, %s, %s, %s, %s::jsonb, %s FROM s
RETURNING seq
"""


def run_group(run_id: int) -> str:
    return f"workflow_run.{run_id}"


def publish(run_id: int, event: dict[str, Any]) -> None:
    """Send an event already written to the table (the engine writes some in bulk)."""
    _get_publisher().send(run_group(run_id), {"type": "workflow.event", "event": event})


def emit(
    run_id: int,
    type: str,
    payload: dict[str, Any] | None = None,
    *,
    step_id: int | None = None,
    node_id: str = "",
) -> int:
    """Write the event with the run's next sequence number and publish it. Returns the number."""
    now = timezone.now()
    body = payload or {}
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [run_id, run_id, type, step_id, node_id, json.dumps(body, default=str), now])
        row = cursor.fetchone()
    if row is None:
        return 0
    seq = int(row[0])
    event = {
        "seq": seq,
        "type": type,
        "step": step_id,
        "node": node_id,
        "payload": body,
        "at": now.isoformat(),
    }
    _get_publisher().send(run_group(run_id), {"type": "workflow.event", "event": event})
    return seq
