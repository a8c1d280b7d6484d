from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from community.models import Notification
from community.services import notify
from config.asgi import application
from tests.helpers import session_ws_headers

pytestmark = pytest.mark.django_db(transaction=True)


async def _connect(user) -> WebsocketCommunicator:
    headers = await database_sync_to_async(session_ws_headers)(user)
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_notify_reaches_the_users_socket_as_an_oob_fragment(alice):
    communicator = await _connect(alice)

    note = await database_sync_to_async(notify)(user_id=alice.pk, text="Run finished", level="success")

    html = await communicator.receive_from(timeout=5)
    assert 'hx-swap-oob="beforeend"' in html
    assert "Run finished" in html
    assert f'data-notification="{note.pk}"' in html
    await communicator.disconnect()


async def test_other_users_notifications_never_arrive(alice, charlie):
    communicator = await _connect(charlie)

    await database_sync_to_async(notify)(user_id=alice.pk, text="alice only")

    assert await communicator.receive_nothing(timeout=0.5)
    await communicator.disconnect()


async def test_anonymous_socket_is_refused():
    communicator = WebsocketCommunicator(
        application, "/ws/notifications/", headers=[(b"origin", b"http://127.0.0.1:8000")]
    )

    connected, code = await communicator.connect()

    assert not connected
    assert code == 4401


async def test_foreign_origin_is_refused(alice):
    headers = await database_sync_to_async(session_ws_headers)(alice)
    headers = [h for h in headers if h[0] != b"origin"] + [(b"origin", b"http://evil.example")]
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)

    connected, _ = await communicator.connect()

    assert not connected


async def test_notification_row_is_the_record_even_without_a_socket(alice):
    await database_sync_to_async(notify)(user_id=alice.pk, text="offline")
    await asyncio.sleep(0)

    assert await database_sync_to_async(Notification.objects.filter(user=alice, text="offline").count)() == 1
