"""`/ws/knowledge/<kb_id>/`: live ingestion progress of one knowledge base's documents.

HTML fragments for the htmx ws extension (each replaces `#doc-<id>-progress` out of band), or the
raw notice with `?format=json`. The socket only notifies; the Document row is the record.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from knowledge.models import Document, KnowledgeBase
from knowledge.progress import kb_group


class KnowledgeProgressConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.user_id = user.pk
        self.kb_id = int(self.scope["url_route"]["kwargs"]["kb_id"])
        if not await self._allowed():
            await self.close(code=4404)  # unknown, or another organization's: indistinguishable
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.json_mode = query.get("format", [""])[0] == "json"
        self.group = kb_group(self.kb_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        return  # clients only listen; uploads and retries go through HTTP, where they are authorized

    async def kb_progress(self, message: dict[str, Any]) -> None:
        # Re-check on every notice: a member removed from the organization stops hearing at once.
        if not await self._allowed():
            await self.close(code=4404)
            return
        if self.json_mode:
            await self.send(text_data=json.dumps(message))
        else:
            await self.send(text_data=await self._render(message))

    @database_sync_to_async
    def _allowed(self) -> bool:
        return KnowledgeBase.objects.filter(
            pk=self.kb_id, organization__memberships__user_id=self.user_id
        ).exists()

    @database_sync_to_async
    def _render(self, message: dict[str, Any]) -> str:
        status = str(message.get("status", ""))
        context = {
            "document_id": int(message["document_id"]),
            "status": status,
            "status_label": dict(Document.Status.choices).get(status, status),
            "progress": int(message.get("progress") or 0),
            "error": message.get("error") or "",
            "oob": True,
        }
        return render_to_string("knowledge/_document_progress.html", context)
