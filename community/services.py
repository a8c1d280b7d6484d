"""Notifications: one helper, `notify`, stores the row and pushes it to the user's socket after commit."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.template.loader import render_to_string

from community.models import Notification

logger = logging.getLogger(__name__)


def notification_group(user_id: int) -> str:
    return f"user.{user_id}.notifications"


def notify(
    *,
    user_id: int,
    text: str,
    url: str = "",
    level: str = Notification.Level.INFO,
    kind: str = "",
    organization_id: int | None = None,
) -> Notification:
    notification = Notification.objects.create(
        user_id=user_id, organization_id=organization_id, text=text[:500], url=url, level=level, kind=kind
    )
    transaction.on_commit(lambda: notification_push(notification_id=notification.pk))
    return notification


def notification_push(*, notification_id: int) -> None:
    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            notification_group(notification.user_id),
            {"type": "notification.created", "id": notification.pk},
        )
    except Exception:
        # The row is the record; a socket that misses the push sees it on the next page load.
        logger.warning("could not push notification %s", notification_id, exc_info=True)


def notification_html(notification: Notification) -> str:
    return render_to_string("community/_notification.html", {"notification": notification, "oob": True})
