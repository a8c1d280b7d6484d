"""`/ws/workflow-runs/<id>/`: replay after a sequence number, then live; gaps filled from the table;
HTML fragments for the run page; closed after `done`; other organizations and anonymous users refused.

The run rows are made directly and events written with `workflows.events.emit` (the same call the
engine makes), so these tests exercise the socket alone."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db.models import F

from config.asgi import application
from tests.helpers import session_ws_headers
from workflows import events, services
from workflows.models import StepRun, WorkflowRun, WorkflowRunEvent

from .conftest import chain, node

pytestmark = pytest.mark.django_db(transaction=True)


def _make_run(org, user):
    graph = {
        "nodes": [
            node("start", "trigger", kind="manual"),
            node("shape", "transform", mapping={"a": "1"}, name="Shape it"),
            node("out", "end"),
        ],
        "edges": chain("start", "shape", "out"),
    }
    workflow = services.workflow_create(org=org, by=user, name="Flow", graph=graph)
    version = workflow.latest_version()
    return WorkflowRun.objects.create(
        organization=org, workflow=workflow, version=version, user=user, source="test", status="running"
    )


async def _connect(user, path):
    headers = (
        await database_sync_to_async(session_ws_headers)(user)
        if user
        else [(b"origin", b"http://127.0.0.1:8000")]
    )
    ws = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await ws.connect()
    return ws, connected, code


async def _receive_json(ws, n):
    return [json.loads(await ws.receive_from(timeout=5)) for _ in range(n)]


emit = database_sync_to_async(events.emit)


async def test_replays_after_seq_then_streams_live_and_closes_after_done(alice, acme):
    run = await database_sync_to_async(_make_run)(acme, alice)
    await emit(run.pk, "run", {"status": "running"})
    await emit(run.pk, "step_started", {"attempt": 1}, node_id="start")
    await emit(run.pk, "step_succeeded", {"port": "out"}, node_id="start")

    ws, connected, _ = await _connect(alice, f"/ws/workflow-runs/{run.pk}/?format=json&after=1")
    assert connected
    replayed = await _receive_json(ws, 2)
    assert [(e["seq"], e["type"], e["node"]) for e in replayed] == [
        (2, "step_started", "start"),
        (3, "step_succeeded", "start"),
    ]

    await emit(run.pk, "step_started", {"attempt": 1}, node_id="shape")
    await emit(run.pk, "done", {"status": "succeeded", "output": {"a": "1"}})
    live = await _receive_json(ws, 2)
    assert [(e["seq"], e["type"]) for e in live] == [(4, "step_started"), (5, "done")]
    assert live[1]["payload"] == {"status": "succeeded", "output": {"a": "1"}}
    closed = await ws.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 1000}


async def test_a_gap_in_the_live_stream_is_filled_from_the_table(alice, acme):
    run = await database_sync_to_async(_make_run)(acme, alice)
    ws, connected, _ = await _connect(alice, f"/ws/workflow-runs/{run.pk}/?format=json")
    assert connected

    def write_silently(seq_type):
        # Rows another writer committed but whose notices this socket never got.
        WorkflowRun.objects.filter(pk=run.pk).update(last_seq=F("last_seq") + 1)
        seq = WorkflowRun.objects.values_list("last_seq", flat=True).get(pk=run.pk)
        WorkflowRunEvent.objects.create(run=run, seq=seq, type=seq_type, node_id="start")

    await database_sync_to_async(write_silently)("step_started")
    await database_sync_to_async(write_silently)("step_succeeded")
    await emit(run.pk, "step_started", {}, node_id="shape")

    received = await _receive_json(ws, 3)
    assert [(e["seq"], e["type"]) for e in received] == [
        (1, "step_started"),
        (2, "step_succeeded"),
        (3, "step_started"),
    ]
    await ws.disconnect()


async def test_notices_sent_together_are_each_delivered_in_order(alice, acme):
    """The publisher sends a run's waiting notices as one `workflow.events` message; the socket
    delivers every event in it, live, and closes after `done`."""
    from channels.layers import get_channel_layer

    run = await database_sync_to_async(_make_run)(acme, alice)
    ws, connected, _ = await _connect(alice, f"/ws/workflow-runs/{run.pk}/?format=json")
    assert connected
    rows = [
        {"seq": 1, "type": "step_started", "node": "start", "payload": {}, "at": ""},
        {"seq": 2, "type": "step_succeeded", "node": "start", "payload": {}, "at": ""},
        {"seq": 3, "type": "done", "node": "", "payload": {"status": "succeeded"}, "at": ""},
    ]
    await get_channel_layer().group_send(
        events.run_group(run.pk), {"type": "workflow.events", "events": rows}
    )
    received = await _receive_json(ws, 3)
    assert [(e["seq"], e["type"]) for e in received] == [
        (1, "step_started"),
        (2, "step_succeeded"),
        (3, "done"),
    ]
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 1000}


async def test_html_mode_sends_the_step_row_and_the_summary_out_of_band(alice, acme):
    run = await database_sync_to_async(_make_run)(acme, alice)

    def step():
        return StepRun.objects.create(
            run=run, node_id="shape", node_type="transform", status="succeeded", attempt=1, output={"a": "1"}
        )

    shape = await database_sync_to_async(step)()
    await emit(run.pk, "step_succeeded", {"port": "out"}, step_id=shape.pk, node_id="shape")
    ws, connected, _ = await _connect(alice, f"/ws/workflow-runs/{run.pk}/")
    assert connected
    html = await ws.receive_from(timeout=5)
    assert f'id="wf-step-{shape.pk}"' in html and 'hx-swap-oob="true"' in html
    assert f'data-wf-append="#wf-run-{run.pk}-steps"' in html
    assert "Shape it" in html and 'data-status="succeeded"' in html

    await database_sync_to_async(WorkflowRun.objects.filter(pk=run.pk).update)(
        status="succeeded", output={"a": "1"}
    )
    await emit(run.pk, "done", {"status": "succeeded"})
    summary = await ws.receive_from(timeout=5)
    assert (
        f'id="wf-run-{run.pk}-summary" hx-swap-oob="true"' in summary and 'data-status="succeeded"' in summary
    )
    assert (await ws.receive_output(timeout=5))["type"] == "websocket.close"


async def test_another_organization_cannot_open_the_socket(alice, acme, charlie, charlie_org):
    run = await database_sync_to_async(_make_run)(acme, alice)
    ws, connected, code = await _connect(charlie, f"/ws/workflow-runs/{run.pk}/?format=json")
    assert not connected and code == 4404


async def test_an_unknown_run_closes_4404(alice, acme):
    ws, connected, code = await _connect(alice, "/ws/workflow-runs/999999/?format=json")
    assert not connected and code == 4404


async def test_anonymous_is_refused_4401(alice, acme):
    run = await database_sync_to_async(_make_run)(acme, alice)
    ws, connected, code = await _connect(None, f"/ws/workflow-runs/{run.pk}/")
    assert not connected and code == 4401
