"""Thin tasks: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from accounts import services


@shared_task(acks_late=True, ignore_result=True)
def send_invitation_email(invitation_id: int) -> None:
    # The service re-fetches the invitation and returns quietly if it is gone or no longer pending.
    services.invitation_send(invitation_id=invitation_id)
