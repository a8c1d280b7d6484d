"""Request/response helpers: JSON bodies, OpenAI-style errors, header values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from .common import JSON_CT, encode, loads
from .state import STATE_KEY, FakeLLMState

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    409: ("conflict", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=encode(obj).encode("utf-8"), status=status, content_type=JSON_CT, headers=headers
    )


def error_body(message: str, etype: str, code: str | None) -> dict[str, Any]:
    """OpenAI-style error body."""
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def error_response(state: FakeLLMState, status: int, message: str | None = None) -> web.Response:
    etype, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    body = error_body(message or f"Injected fake error (HTTP {status})", etype, code)
    headers = None
    if state.error_retry_after_ms is not None:
        headers = {"retry-after-ms": str(state.error_retry_after_ms)}
    return json_response(body, status=status, headers=headers)


def reject(state: FakeLLMState, status: int, message: str | None = None) -> web.Response:
    """Count an error in the stats and answer it."""
    state.errors += 1
    return error_response(state, status, message)


def header_float(request: web.Request, name: str) -> float | None:
    v = request.headers.get(name)
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    return loads(raw) if raw else {}


async def api_body(request: web.Request, key: str, problem: Callable[[Any], str | None]) -> Any:
    """Count a call to ``key`` and read its JSON body.

    Returns the body (recorded for ``/_requests``), or the 400 response to send
    when it is not JSON or ``problem(body)`` names what is wrong with it.
    """
    state = request.app[STATE_KEY]
    state.count(key)
    state.connection(request)
    try:
        body = await read_json(request)
    except ValueError:
        return reject(state, 400, "Request body is not valid JSON")
    message = problem(body)
    if message is not None:
        return reject(state, 400, message)
    state.record(request, key, body)
    return body
