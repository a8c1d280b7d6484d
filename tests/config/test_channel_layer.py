"""The channel layer's blocking group send (config.channel_layer), against the real Redis: what it
sends is what channels_redis's own consumers receive, and it keeps channels_redis's rules."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from django.conf import settings

from config.channel_layer import RedisChannelLayer


def _layer(**options) -> RedisChannelLayer:
    return RedisChannelLayer(hosts=[settings.REDIS_URL], prefix=f"test-cl-{uuid.uuid4().hex[:8]}", **options)


async def _join(layer: RedisChannelLayer, group: str, n: int = 1) -> list[str]:
    channels = [await layer.new_channel("t") for _ in range(n)]
    for channel in channels:
        await layer.group_add(group, channel)
    return channels


async def _receive(layer: RedisChannelLayer, channel: str) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout=5)


def test_every_member_receives_the_message_through_the_async_layer():
    layer = _layer()

    async def scenario() -> None:
        a, b = await _join(layer, "run.1", 2)
        # The blocking send runs in a thread, as the worker's publisher does.
        sent = await asyncio.to_thread(
            layer.group_send_blocking, "run.1", {"type": "run.event", "event": {"seq": 1}}
        )
        assert sent == 2
        for channel in (a, b):
            message = await _receive(layer, channel)
            assert message == {"type": "run.event", "event": {"seq": 1}}

    asyncio.run(scenario())


def test_an_empty_group_sends_nothing_and_leaves_no_keys():
    layer = _layer()
    client, _, _ = layer._blocking_client(0)
    before = set(client.scan_iter(match=f"{layer.prefix}*"))
    assert layer.group_send_blocking("run.404", {"type": "run.event", "event": {"seq": 1}}) == 0
    assert set(client.scan_iter(match=f"{layer.prefix}*")) == before == set()


def test_a_full_channel_is_not_filled_past_its_capacity():
    layer = _layer(capacity=2)

    async def scenario() -> None:
        (channel,) = await _join(layer, "run.2")
        sent = [
            await asyncio.to_thread(layer.group_send_blocking, "run.2", {"type": "n", "i": i})
            for i in range(4)
        ]
        assert sent == [1, 1, 0, 0]
        assert [(await _receive(layer, channel))["i"] for _ in range(2)] == [0, 1]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), timeout=0.3)

    asyncio.run(scenario())


def test_members_past_the_group_expiry_are_dropped_before_sending():
    layer = _layer(group_expiry=60)
    client, _, _ = layer._blocking_client(0)

    async def scenario() -> None:
        fresh, old = await _join(layer, "run.3", 2)
        client.zadd(layer._group_key("run.3"), {old: time.time() - 120})  # joined two minutes ago
        assert await asyncio.to_thread(layer.group_send_blocking, "run.3", {"type": "n"}) == 1
        assert await _receive(layer, fresh) == {"type": "n"}
        assert client.zrange(layer._group_key("run.3"), 0, -1) == [fresh.encode()]

    asyncio.run(scenario())


def test_messages_past_the_expiry_are_pruned_from_a_queue_before_the_capacity_check():
    layer = _layer(capacity=1, expiry=30)
    client, _, _ = layer._blocking_client(0)

    async def scenario() -> None:
        (channel,) = await _join(layer, "run.4")
        assert await asyncio.to_thread(layer.group_send_blocking, "run.4", {"type": "n", "i": 1}) == 1
        key = layer.prefix + layer.non_local_name(channel)
        (stored,) = client.zrange(key, 0, -1)
        client.zadd(key, {stored: time.time() - 60})  # nobody read it, and it has expired
        assert await asyncio.to_thread(layer.group_send_blocking, "run.4", {"type": "n", "i": 2}) == 1
        assert (await _receive(layer, channel))["i"] == 2

    asyncio.run(scenario())
