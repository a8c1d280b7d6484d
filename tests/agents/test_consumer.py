"""`/ws/runs/<id>/` on its own: a long finished run replays to `done` in batches, and a sequence number
that never arrives does not hold back what follows it. Rows are written directly, as the worker would."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agents import services
from agents.models import AgentRun, RunEvent
from agents.runtime.events import publish
from config.asgi import application
from tests.helpers import session_ws_headers

pytestmark = pytest.mark.django_db(transaction=True)


def _run(make_agent, user):
    return services.run_create(agent=make_agent(), user=user, input="hi", enqueue=False)


def _write(run, seqs, final=True):
    rows = [RunEvent(run=run, seq=s, type="delta", payload={"text": f"{s} "}) for s in seqs]
    if final:
        rows.append(RunEvent(run=run, seq=seqs[-1] + 1, type="done", payload={"status": "succeeded"}))
    RunEvent.objects.bulk_create(rows)
    AgentRun.objects.filter(pk=run.pk).update(last_seq=rows[-1].seq)


async def _open(user, run_id, after=0):
    headers = await database_sync_to_async(session_ws_headers)(user)
    ws = WebsocketCommunicator(application, f"/ws/runs/{run_id}/?after={after}&format=json", headers=headers)
    connected, _ = await ws.connect()
    assert connected
    return ws


async def _until_done(ws):
    events = []
    while not events or events[-1]["type"] != "done":
        events.append(json.loads(await ws.receive_from(timeout=10)))
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 1000}
    return events


async def test_a_long_finished_run_replays_every_event_to_done(make_agent, alice):
    run = await database_sync_to_async(_run)(make_agent, alice)
    await database_sync_to_async(_write)(run, list(range(1, 4501)))  # more than one replay batch

    events = await _until_done(await _open(alice, run.pk))

    assert [e["seq"] for e in events] == list(range(1, 4502))


async def test_a_missing_sequence_number_does_not_hold_back_done(make_agent, alice):
    run = await database_sync_to_async(_run)(make_agent, alice)
    await database_sync_to_async(_write)(run, [1, 2], final=False)
    ws = await _open(alice, run.pk)
    assert [json.loads(await ws.receive_from(timeout=5))["seq"] for _ in range(2)] == [1, 2]

    # seq 3 was numbered but never written (its writer died); 4 and done are committed and announced.
    await database_sync_to_async(_write)(run, [4])
    for row in await database_sync_to_async(list)(
        RunEvent.objects.filter(run=run, seq__gte=4).order_by("seq")
    ):
        publish(run.pk, row.as_dict())

    events = await _until_done(ws)
    assert [(e["seq"], e["type"]) for e in events] == [(4, "delta"), (5, "done")]


async def test_a_finished_run_with_a_hole_replays_past_it_to_done(make_agent, alice):
    run = await database_sync_to_async(_run)(make_agent, alice)
    await database_sync_to_async(_write)(run, [1, 2, 4])  # 3 never written; done is 5

    events = await _until_done(await _open(alice, run.pk))

    assert [e["seq"] for e in events] == [1, 2, 4, 5]


async def test_a_finished_run_with_a_hole_far_before_done_replays_past_it(make_agent, alice):
    run = await database_sync_to_async(_run)(make_agent, alice)
    seqs = [s for s in range(1, 2601) if s != 3]  # more than one replay batch between the hole and done
    await database_sync_to_async(_write)(run, seqs)

    events = await _until_done(await _open(alice, run.pk))

    assert [e["seq"] for e in events] == [*seqs, 2601]


async def test_a_live_delta_ahead_of_an_unflushed_gap_waits_and_nothing_is_lost(make_agent, alice):
    """Deltas reach the table in batches while their notices go out at once: a gap in a running
    agent run is late, not lost, so the socket waits for it instead of moving past it."""
    run = await database_sync_to_async(_run)(make_agent, alice)
    await database_sync_to_async(_write)(run, [1], final=False)
    ws = await _open(alice, run.pk)
    assert json.loads(await ws.receive_from(timeout=5))["seq"] == 1

    publish(run.pk, {"seq": 3, "type": "delta", "payload": {"text": "3 "}, "at": ""})  # 2 not flushed yet
    assert await ws.receive_nothing(timeout=0.6)  # longer than the gap retries

    await database_sync_to_async(_write)(run, [2, 3, 4], final=False)
    publish(run.pk, {"seq": 4, "type": "delta", "payload": {"text": "4 "}, "at": ""})
    await database_sync_to_async(_write)(run, [5])
    publish(run.pk, {"seq": 6, "type": "done", "payload": {"status": "succeeded"}, "at": ""})

    events = await _until_done(ws)
    assert [e["seq"] for e in events] == [2, 3, 4, 5, 6]


async def test_notices_sent_together_reach_the_socket_in_order(make_agent, alice):
    """The worker's publisher sends a run's waiting notices as one `run.events` message: the socket
    delivers each of them, live (none of them is in the table), in sequence."""
    from channels.layers import get_channel_layer

    from agents.runtime.events import run_group

    run = await database_sync_to_async(_run)(make_agent, alice)
    await database_sync_to_async(_write)(run, [1], final=False)
    ws = await _open(alice, run.pk)
    assert json.loads(await ws.receive_from(timeout=5))["seq"] == 1

    events = [{"seq": s, "type": "delta", "payload": {"text": f"{s} "}, "at": ""} for s in (2, 3)]
    events.append({"seq": 4, "type": "done", "payload": {"status": "succeeded"}, "at": ""})
    await get_channel_layer().group_send(run_group(run.pk), {"type": "run.events", "events": events})

    received = await _until_done(ws)
    assert [(e["seq"], e["type"]) for e in received] == [(2, "delta"), (3, "delta"), (4, "done")]
