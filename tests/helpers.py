"""Small assertion helpers shared by the API tests."""

from __future__ import annotations

import json

from rest_framework.test import APIClient

ENVELOPE_KEYS = {"detail", "error_code", "field_errors"}


def assert_envelope(response, status: int, error_code: str) -> dict:
    """The response is our documented error envelope with this status and code."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == ENVELOPE_KEYS
    assert body["error_code"] == error_code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def session_ws_headers(user) -> list[tuple[bytes, bytes]]:
    """Websocket handshake headers for a logged-in browser session (the cookie and a same-site origin)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1:8000")]


def execute_in_thread(run_id: int, statuses: dict[int, str] | None = None) -> None:
    """A thread's target: execute an agent run as a worker would, recording its final status."""
    from django.db import connections

    from agents.runtime.executor import execute_run

    try:
        status = execute_run(run_id)
        if statuses is not None:
            statuses[run_id] = status
    finally:
        connections.close_all()  # the thread's own connection, so the test database can be dropped
