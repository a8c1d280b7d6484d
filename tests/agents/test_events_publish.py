"""The worker's event publisher: notices waiting at the same moment go out as one message per group."""

from __future__ import annotations

import asyncio

from channels.layers import get_channel_layer

from agents.runtime.events import _get_publisher, coalesce, publish, run_group


def _ev(seq: int, type: str = "delta") -> dict:
    return {"seq": seq, "type": type, "payload": {}, "at": ""}


def test_one_message_per_group_in_order_and_other_messages_untouched():
    batch = [
        ("run.1", {"type": "run.event", "event": _ev(1)}),
        ("run.2", {"type": "run.event", "event": _ev(7)}),
        ("run.1", {"type": "run.event", "event": _ev(2)}),
        ("wf.5", {"type": "workflow.event", "event": _ev(3, "step_started")}),
        ("kb.3", {"type": "kb.progress", "stage": "embed"}),
        ("run.1", {"type": "run.event", "event": _ev(3, "done")}),
        ("wf.5", {"type": "workflow.event", "event": _ev(4, "done")}),
    ]
    assert coalesce(batch) == [
        ("run.1", {"type": "run.events", "events": [_ev(1), _ev(2), _ev(3, "done")]}),
        ("run.2", {"type": "run.event", "event": _ev(7)}),  # alone: the singular form
        ("wf.5", {"type": "workflow.events", "events": [_ev(3, "step_started"), _ev(4, "done")]}),
        ("kb.3", {"type": "kb.progress", "stage": "embed"}),
    ]


def test_a_message_that_cannot_be_merged_splits_its_group_so_order_holds():
    batch = [
        ("run.1", {"type": "run.event", "event": _ev(1)}),
        ("run.1", {"type": "other.notice", "n": 1}),
        ("run.1", {"type": "run.event", "event": _ev(2)}),
        ("run.1", {"type": "run.event", "event": _ev(3)}),
    ]
    assert coalesce(batch) == [
        ("run.1", {"type": "run.event", "event": _ev(1)}),
        ("run.1", {"type": "other.notice", "n": 1}),
        ("run.1", {"type": "run.events", "events": [_ev(2), _ev(3)]}),
    ]


def test_messages_of_other_types_are_never_reshaped():
    batch = [
        ("g", {"type": "other.events", "events": [1]}),
        ("g", {"type": "kb.progress", "events": ["x"]}),
    ]
    assert coalesce(batch) == batch


def test_a_single_notice_passes_as_it_is():
    only = [("run.1", {"type": "run.event", "event": _ev(1)})]
    assert coalesce(only) == only


def test_notices_queued_while_the_publisher_is_busy_arrive_as_one_message():
    """Through the real channel layer (Redis): three events published while the publisher's loop is
    busy reach a listener of the run's group as one `run.events` message, in order."""
    layer = get_channel_layer()
    group = run_group(990_001)

    async def join() -> str:
        channel = await layer.new_channel("test")
        await layer.group_add(group, channel)
        return channel

    async def receive(channel: str) -> dict:
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            await layer.group_discard(group, channel)

    channel = asyncio.run(join())
    publisher = _get_publisher()
    with publisher.sending:  # the publisher is busy: what is published meanwhile waits in its queue
        for seq in (1, 2, 3):
            publish(990_001, _ev(seq))

    message = asyncio.run(receive(channel))
    assert message["type"] == "run.events"
    assert [e["seq"] for e in message["events"]] == [1, 2, 3]
