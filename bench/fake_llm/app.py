"""The aiohttp application: routes, models, embeddings, stats and config endpoints."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .chat import handle_chat
from .common import HOST, MODEL_CREATED, MODELS
from .embeddings import embed_b64, embed_text, embedding_inputs
from .responses import api_body, error_body, error_response, json_response, read_json, reject
from .state import CONFIG_FIELDS, STATE_KEY, FakeLLMState
from .text import estimate_tokens


def _model(mid: str) -> dict[str, Any]:
    return {"id": mid, "object": "model", "created": MODEL_CREATED, "owned_by": "fake-llm"}


async def handle_models(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.count("GET /v1/models")
    return json_response({"object": "list", "data": [_model(m) for m in MODELS]})


async def handle_model(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.count("GET /v1/models/{id}")
    mid = request.match_info["model"]
    if mid not in MODELS:
        return json_response(
            error_body(f"The model '{mid}' does not exist", "invalid_request_error", "model_not_found"),
            status=404,
        )
    return json_response(_model(mid))


def _embeddings_problem(body: Any) -> str | None:
    return None if isinstance(body, dict) else "Invalid request body"


async def handle_embeddings(request: web.Request) -> web.Response:
    body = await api_body(request, "POST /v1/embeddings", _embeddings_problem)
    if isinstance(body, web.Response):
        return body
    state = request.app[STATE_KEY]
    inputs = embedding_inputs(body.get("input"))
    if inputs is None:
        return reject(state, 400, "'input' must be a string or a non-empty list of strings")
    dim = body.get("dimensions")
    if not isinstance(dim, int) or dim <= 0:
        dim = state.embedding_dim
    b64 = body.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for i, t in enumerate(inputs):
        tokens += estimate_tokens(t)
        data.append(
            {
                "object": "embedding",
                "index": i,
                "embedding": embed_b64(t, dim) if b64 else embed_text(t, dim),
            }
        )
    return json_response(
        {
            "object": "list",
            "data": data,
            "model": body.get("model") or "fake-embed",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def handle_stats(request: web.Request) -> web.Response:
    return json_response(request.app[STATE_KEY].stats())


async def handle_reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return json_response({"ok": True})


async def handle_requests(request: web.Request) -> web.Response:
    return json_response(list(request.app[STATE_KEY].requests))


def _config_value(key: str, value: Any) -> Any:
    if key == "embedding_dim":
        return int(value)
    if value is None and key == "error_retry_after_ms":
        return None
    return float(value)


async def handle_config(request: web.Request) -> web.Response:
    """GET: current runtime knobs. POST {knob: value, ...}: change them, return the new values."""
    state = request.app[STATE_KEY]
    if request.method == "POST":
        try:
            body = await read_json(request)
        except ValueError:
            return error_response(state, 400, "Request body is not valid JSON")
        if not isinstance(body, dict) or set(body) - set(CONFIG_FIELDS):
            return error_response(state, 400, f"Allowed keys: {', '.join(CONFIG_FIELDS)}")
        try:
            values = {k: _config_value(k, v) for k, v in body.items()}
        except (TypeError, ValueError):
            return error_response(state, 400, "Config values must be numbers")
        for k, v in values.items():
            setattr(state, k, v)
    return json_response({k: getattr(state, k) for k in CONFIG_FIELDS})


def make_app(state: FakeLLMState | None = None) -> web.Application:
    """Build the aiohttp application (usable with aiohttp's test client)."""
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app[STATE_KEY] = state or FakeLLMState()
    for prefix in ("/v1", ""):
        app.router.add_get(prefix + "/models", handle_models)
        app.router.add_get(prefix + "/models/{model}", handle_model)
        app.router.add_post(prefix + "/chat/completions", handle_chat)
        app.router.add_post(prefix + "/embeddings", handle_embeddings)
    app.router.add_get("/_stats", handle_stats)
    app.router.add_post("/_reset", handle_reset)
    app.router.add_get("/_requests", handle_requests)
    app.router.add_get("/_config", handle_config)
    app.router.add_post("/_config", handle_config)
    return app


async def start_site(
    app: web.Application, port: int, *, access_log: bool = False
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``HOST:port`` (0 = a free port); return the runner and the bound port."""
    if access_log:
        runner = web.AppRunner(app, shutdown_timeout=1.0)
    else:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=1024, reuse_address=True)
    await site.start()
    return runner, int(runner.addresses[0][1])
