"""config/broker: Celery's connections use our kombu Redis transport, whose channel keeps one Redis
client (built anew only when kombu replaces the channel's pool), and messages still go round trip
with ack emulation: delivered, acknowledged, gone from the unacked index."""

from __future__ import annotations

import pytest
from django.conf import settings

from config import broker
from config.celery import app


@pytest.fixture
def channel():
    with app.connection_for_write() as conn:
        yield conn.default_channel


def test_celery_connects_through_our_transport_also_for_a_socket_url():
    with app.connection_for_write() as conn:
        assert isinstance(conn.transport, broker.Transport)
    assert settings.CELERY_BROKER_URL.startswith(f"{broker.ALIAS}+socket://")  # the tests' Redis is a socket


def test_a_channel_builds_one_client_and_a_new_one_for_a_new_pool(channel):
    first = channel._create_client()
    assert channel._create_client() is first
    assert first.connection_pool is channel.pool
    channel._pool = None  # as kombu does when it disconnects the pool
    second = channel._create_client()
    assert second is not first and second.connection_pool is channel.pool
    assert channel._create_client(asynchronous=True) is not second  # the async client is kombu's own


def test_a_message_goes_round_trip_and_its_ack_clears_the_unacked_index(channel):
    from kombu import Connection

    with Connection(settings.CELERY_BROKER_URL, transport=settings.CELERY_BROKER_TRANSPORT) as conn:
        queue = conn.SimpleQueue("test-broker-roundtrip")
        try:
            queue.put({"n": 7})
            message = queue.get(timeout=5)
            assert message.payload == {"n": 7}
            qos = queue.channel.qos
            client = queue.channel._create_client()
            assert client.hexists(qos.unacked_key, message.delivery_tag)  # delivered, not yet acked
            message.ack()
            assert not client.hexists(qos.unacked_key, message.delivery_tag)
            assert client.llen("test-broker-roundtrip") == 0
        finally:
            queue.channel._create_client().delete("test-broker-roundtrip")
            queue.close()
