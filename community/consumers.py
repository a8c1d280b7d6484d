from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from community.models import Notification
from community.services import notification_group, notification_html


class NotificationConsumer(AsyncWebsocketConsumer):
    """`/ws/notifications/`: one stream per signed-in user, HTML fragments for the htmx ws extension."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user_id = user.pk
        self.group = notification_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The stream only notifies; nothing a client sends changes state here.
        return

    async def notification_created(self, event: dict[str, Any]) -> None:
        html = await self._render(event["id"])
        if html:
            await self.send(text_data=html)

    @database_sync_to_async
    def _render(self, notification_id: int) -> str | None:
        # Re-check on every message: only the owner's notifications ever leave through this socket.
        notification = Notification.objects.filter(pk=notification_id, user_id=self.user_id).first()
        return notification_html(notification) if notification else None
