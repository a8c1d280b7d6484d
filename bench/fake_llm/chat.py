"""Chat completions: text or tool-call replies, streaming and non-streaming, usage."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .common import MODELS, encode
from .controls import Controls, parse_controls
from .responses import api_body, header_float, json_response, reject
from .schema import minimal_from_schema, response_format_text
from .state import STATE_KEY
from .text import content_text, estimate_tokens, split_tokens

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

Call = tuple[str, str]  # (function name, arguments JSON text)


@dataclass
class _Completion:
    """Everything one answer needs, streamed or not."""

    cid: str
    created: int
    model: Any
    finish_reason: str
    text: str | None  # None for tool calls
    tokens: list[str]  # text tokens
    call_chunks: list[tuple[str, str, list[str]]]  # (call id, name, argument pieces)
    usage: dict[str, int]


def _body_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return "'messages' is a required property"
    return None


def _tool_names(tools: Any) -> list[tuple[str, Any]]:
    out = []
    if isinstance(tools, list):
        for t in tools:
            if isinstance(t, dict):
                fn = t.get("function")
                if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                    out.append((fn["name"], fn.get("parameters")))
    return out


def _last_user_index(messages: list[Any]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user":
            return i
    return -1


def _tool_calls(body: dict[str, Any], ctl: Controls) -> list[Call]:
    """Calls from ``[[tool:...]]`` markers, else the one ``tool_choice`` forces, else none."""
    available = _tool_names(body.get("tools"))
    tool_choice = body.get("tool_choice")
    if not available or tool_choice == "none":
        return []
    names = {n for n, _ in available}
    calls = [c for c in ctl.tools if c[0] in names]
    if calls:
        return calls
    forced: str | None = None
    if isinstance(tool_choice, dict):
        fn = tool_choice.get("function")
        if isinstance(fn, dict):
            forced = fn.get("name")
    elif tool_choice == "required":
        forced = available[0][0]
    if forced is None:
        return []
    params = next((p for n, p in available if n == forced), None)
    args = minimal_from_schema(params) if isinstance(params, dict) else {}
    return [(forced, json.dumps(args if isinstance(args, dict) else {}))]


def _choose_reply(
    body: dict[str, Any], ctl: Controls, tool_results: list[str]
) -> tuple[list[Call], str | None]:
    """Tool calls to make (and no text), or the reply text."""
    if tool_results:
        return [], "Tool result: " + "\n".join(tool_results)
    calls = _tool_calls(body, ctl)
    if calls:
        return calls, None
    if ctl.clock:
        return [], " ".join(["0"] * ctl.clock)  # placeholders, stamped with the time as they are sent
    if ctl.json_text is not None:
        return [], ctl.json_text
    if ctl.reply is not None:
        return [], ctl.reply
    text = response_format_text(body.get("response_format"))
    if text is None:
        text = f"Echo: {ctl.text}" if ctl.text else "Echo:"
    return [], text


def _delay_s(marker_ms: float | None, request: web.Request, header: str, default_ms: float) -> float:
    """Seconds to sleep: marker > request header > server-wide setting (all in ms)."""
    ms = marker_ms
    if ms is None:
        ms = header_float(request, header)
    if ms is None:
        ms = default_ms
    return max(0.0, float(ms or 0.0)) / 1000.0


def _prompt_tokens(messages: list[Any]) -> int:
    prompt_tokens = 0
    for m in messages:
        if isinstance(m, dict):
            prompt_tokens += estimate_tokens(content_text(m.get("content")))
            tcs = m.get("tool_calls")
            if isinstance(tcs, list):
                for tc in tcs:
                    fn = tc.get("function") if isinstance(tc, dict) else None
                    if isinstance(fn, dict):
                        prompt_tokens += estimate_tokens(str(fn.get("name", ""))) + estimate_tokens(
                            str(fn.get("arguments", ""))
                        )
    return prompt_tokens


def _plan(
    n: int, body: dict[str, Any], calls: list[Call], text: str | None, prompt_tokens: int
) -> _Completion:
    """Split the answer into tokens (honouring max tokens) and count usage."""
    finish_reason = "stop"
    tokens: list[str] = []
    call_chunks: list[tuple[str, str, list[str]]] = []
    if calls:
        finish_reason = "tool_calls"
        for j, (name, args) in enumerate(calls):
            call_chunks.append((f"call_fake{n:08x}{j:02d}", name, split_tokens(args) or [args]))
        completion_tokens = sum(1 + len(p) for _, _, p in call_chunks)
    else:
        assert text is not None
        tokens = split_tokens(text)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and 0 < limit < len(tokens):
            tokens = tokens[:limit]
            text = "".join(tokens)
            finish_reason = "length"
        completion_tokens = len(tokens)
    return _Completion(
        cid=f"chatcmpl-fake{n:08x}",
        created=int(time.time()),
        model=body.get("model") or MODELS[0],
        finish_reason=finish_reason,
        text=None if calls else text,
        tokens=tokens,
        call_chunks=call_chunks,
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )


def _completion_body(c: _Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None}
    if c.call_chunks:
        message["tool_calls"] = [
            {"id": cid_, "type": "function", "function": {"name": name, "arguments": "".join(pieces)}}
            for cid_, name, pieces in c.call_chunks
        ]
    return {
        "id": c.cid,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": c.finish_reason}],
        "usage": c.usage,
    }


def _sse_events(c: _Completion, include_usage: bool) -> tuple[bytes, list[bytes], bytes]:
    """(head, one event per token, tail incl. finish/usage/[DONE]) of a streamed answer."""
    prefix = (
        f'{{"id":"{c.cid}","object":"chat.completion.chunk","created":{c.created},"model":{encode(c.model)},'
        '"system_fingerprint":"fp_fake","choices":'
    ).encode()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return (
            b"data: "
            + prefix
            + encode([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]).encode(
                "utf-8"
            )
            + b"}\n\n"
        )

    token_chunks: list[bytes] = []
    if c.call_chunks:
        head = chunk({"role": "assistant", "content": None})
        for idx, (cid_, name, pieces) in enumerate(c.call_chunks):
            token_chunks.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": idx,
                                "id": cid_,
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for p in pieces:
                token_chunks.append(chunk({"tool_calls": [{"index": idx, "function": {"arguments": p}}]}))
    else:
        head = chunk({"role": "assistant", "content": "", "refusal": None})
        token_chunks = [chunk({"content": t}) for t in c.tokens]
    tail = chunk({}, c.finish_reason)
    if include_usage:
        tail += b"data: " + prefix + b'[],"usage":' + encode(c.usage).encode("utf-8") + b"}\n\n"
    tail += b"data: [DONE]\n\n"
    return head, token_chunks, tail


_CLOCK_RE = re.compile(rb'("content":" ?)0')


async def handle_chat(request: web.Request) -> web.StreamResponse:
    body = await api_body(request, "POST /v1/chat/completions", _body_problem)
    if isinstance(body, web.Response):
        return body
    state = request.app[STATE_KEY]

    messages: list[Any] = body["messages"]
    stream = bool(body.get("stream"))

    # Last user message, its controls and any tool results after it.
    last_user = _last_user_index(messages)
    user_text = content_text(messages[last_user].get("content")) if last_user >= 0 else ""
    ctl = parse_controls(user_text)

    if ctl.error is not None:
        status, fail_n = ctl.error
        inject = True
        if fail_n is not None:
            ek = (user_text, status)
            seen = state._error_attempts.get(ek, 0)
            state._error_attempts[ek] = seen + 1
            inject = seen < fail_n
        if inject:
            return reject(state, status)

    tool_results = [
        content_text(m.get("content"))
        for m in messages[last_user + 1 :]
        if isinstance(m, dict) and m.get("role") == "tool"
    ]
    calls, text = _choose_reply(body, ctl, tool_results)
    latency = _delay_s(ctl.latency_ms, request, "X-Fake-Token-Latency-Ms", state.token_latency_ms)
    first = _delay_s(ctl.first_token_ms, request, "X-Fake-First-Token-Ms", state.first_token_ms)
    c = _plan(next(state._ids), body, calls, text, _prompt_tokens(messages))

    if not stream:
        delay = first + latency * c.usage["completion_tokens"]
        if delay > 0:
            await asyncio.sleep(delay)
        return json_response(_completion_body(c))

    state.streams += 1
    so = body.get("stream_options")
    head, token_chunks, tail = _sse_events(c, isinstance(so, dict) and bool(so.get("include_usage")))
    if latency <= 0 and first <= 0 and not ctl.clock:
        return web.Response(body=head + b"".join(token_chunks) + tail, headers=_SSE_HEADERS)

    resp = web.StreamResponse(headers=_SSE_HEADERS)
    await resp.prepare(request)
    await resp.write(head)
    if first > 0:
        await asyncio.sleep(first)
    for chunk in token_chunks:
        if latency > 0:
            await asyncio.sleep(latency)
        if ctl.clock:
            stamp = str(time.time_ns()).encode()
            chunk = _CLOCK_RE.sub(lambda m, s=stamp: m.group(1) + s, chunk, count=1)
        await resp.write(chunk)
    await resp.write(tail)
    await resp.write_eof()
    return resp
