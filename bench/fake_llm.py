"""Fake OpenAI-compatible LLM server for tests and benchmarks.

A small aiohttp app, bound to 127.0.0.1 only, that speaks enough of the OpenAI
HTTP API for the ``openai`` client and agno's ``OpenAIChat`` model to work
against it:

* ``GET  /v1/models`` and ``GET /v1/models/{id}``
* ``POST /v1/chat/completions`` (streaming and non-streaming, tool calls,
  ``response_format``, ``usage``, ``stream_options.include_usage``)
* ``POST /v1/embeddings`` (deterministic feature-hashing bag of words with a
  small synonym map; ``float`` and ``base64`` encodings)
* ``GET  /_stats``, ``POST /_reset``, ``GET /_requests`` (recent request
  bodies), ``GET|POST /_config`` (runtime knobs) — test helpers

Every route is also served without the ``/v1`` prefix. Any ``Authorization``
header (or none) is accepted.

Behaviour is driven by markers in the content of the *last user message*, so
tests can steer it through any client or framework:

``[[tool:NAME {json args}]]``
    If the request's ``tools`` include NAME, answer with a tool call to NAME
    with those arguments (args are optional, default ``{}``). Several markers
    give parallel tool calls. Once ``tool`` role messages follow the last user
    message, the answer is the text ``"Tool result: <tool content>"`` (several
    results are joined with ``"\\n"``).
``[[error:CODE]]`` / ``[[error:CODE:N]]``
    Answer HTTP CODE with an OpenAI-style error body. With ``:N`` only the
    first N requests carrying that exact user message fail; later ones are
    answered normally (handy for retry tests). Counters reset on ``/_reset``.
``[[reply:some text]]``
    The reply is exactly ``some text``.
``[[json:{...}]]``
    The reply is exactly that JSON text (any JSON value).
``[[latency:MS]]`` / ``[[first_token:MS]]``
    Per-request per-token latency / first-token latency in milliseconds.

Without markers the reply is ``"Echo: <last user message>"`` (markers
stripped). With ``response_format`` of type ``json_schema`` (and no
``[[json:...]]``/``[[reply:...]]``) the reply is a minimal JSON object
satisfying the schema's required properties; with ``json_object`` it is ``{}``.
``tool_choice`` naming a function (or ``"required"``) without a marker calls
that function (or the first tool) with minimal arguments built from its
parameter schema; ``tool_choice="none"`` disables tool calls.

Latency: ``token_latency_ms`` (server-wide, settable at runtime) is slept before
every emitted token; ``first_token_ms`` additionally before the first one.
Per request they can be overridden with the ``X-Fake-Token-Latency-Ms`` and
``X-Fake-First-Token-Ms`` headers (markers win over headers).

Usage accounting: ``prompt_tokens`` is the sum over messages of
``max(words, ceil(chars / 4))``; ``completion_tokens`` is the number of emitted
word tokens (for tool calls: the number of argument chunks, plus one per call
for the name chunk).

Run standalone::

    python -m bench.fake_llm --port 8765 --token-latency-ms 0

or in-process (background thread with its own event loop)::

    with FakeLLMServer(token_latency_ms=0) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="x")

or as a child process with the same Python API (better for benchmarks, no GIL
sharing with the code under test)::

    with FakeLLMProcess() as srv:
        ...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import itertools
import json
import math
import re
import signal
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aiohttp import web

__all__ = [
    "FakeLLMServer",
    "FakeLLMProcess",
    "FakeLLMState",
    "make_app",
    "embed_text",
    "parse_controls",
    "minimal_from_schema",
    "MODELS",
    "DEFAULT_EMBEDDING_DIM",
]

HOST = "127.0.0.1"
DEFAULT_EMBEDDING_DIM = 384
MODELS = ("fake-gpt", "fake-gpt-mini", "fake-embed")
_MODEL_CREATED = 1700000000

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads
_raw_decode = json.JSONDecoder().raw_decode

_JSON_CT = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


# --------------------------------------------------------------------------
# Control markers
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Controls:
    """Parsed control markers of one user message."""

    text: str  # message text with all markers removed (stripped)
    tools: tuple[tuple[str, str], ...] = ()  # (name, arguments JSON text)
    error: tuple[int, int | None] | None = None  # (status, fail_first_n)
    reply: str | None = None
    json_text: str | None = None
    latency_ms: float | None = None
    first_token_ms: float | None = None


_MARKER_RE = re.compile(r"\[\[(tool|error|reply|json|latency|first_token):")
_TOOL_NAME_RE = re.compile(r"\s*([A-Za-z_][\w.\-]*)\s*")
_CLOSE_RE = re.compile(r"\s*\]\]")
_ERROR_RE = re.compile(r"\s*(\d{3})\s*(?::\s*(\d+)\s*)?\]\]")
_NUMBER_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*\]\]")
_WS_START_RE = re.compile(r"\s*")


@lru_cache(maxsize=4096)
def parse_controls(text: str) -> Controls:
    """Parse ``[[...]]`` control markers out of ``text``.

    Malformed markers are left in the text untouched.
    """
    if "[[" not in text:
        return Controls(text=text.strip())
    tools: list[tuple[str, str]] = []
    error = reply = json_text = latency = first_token = None
    kept: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _MARKER_RE.search(text, pos)
        if m is None:
            break
        kind = m.group(1)
        start, cur = m.start(), m.end()
        end = -1
        if kind == "tool":
            nm = _TOOL_NAME_RE.match(text, cur)
            if nm:
                name, cur = nm.group(1), nm.end()
                args: Any = {}
                ok = True
                if cur < n and text[cur] != "]":
                    try:
                        args, cur = _raw_decode(text, cur)
                    except ValueError:
                        ok = False
                if ok:
                    cm = _CLOSE_RE.match(text, cur)
                    if cm:
                        tools.append((name, json.dumps(args)))
                        end = cm.end()
        elif kind == "json":
            jstart = _WS_START_RE.match(text, cur).end()  # type: ignore[union-attr]
            try:
                _value, cur2 = _raw_decode(text, jstart)
            except ValueError:
                cur2 = -1
            if cur2 >= 0:
                cm = _CLOSE_RE.match(text, cur2)
                if cm:
                    json_text = text[jstart:cur2]
                    end = cm.end()
        elif kind == "reply":
            close = text.find("]]", cur)
            if close >= 0:
                reply = text[cur:close]
                end = close + 2
        elif kind == "error":
            em = _ERROR_RE.match(text, cur)
            if em:
                error = (int(em.group(1)), int(em.group(2)) if em.group(2) else None)
                end = em.end()
        else:  # latency / first_token
            nm2 = _NUMBER_RE.match(text, cur)
            if nm2:
                if kind == "latency":
                    latency = float(nm2.group(1))
                else:
                    first_token = float(nm2.group(1))
                end = nm2.end()
        if end < 0:  # malformed: keep the "[[" literally and continue after it
            kept.append(text[pos : start + 2])
            pos = start + 2
            continue
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    clean = " ".join(seg for seg in (k.strip() for k in kept) if seg)
    return Controls(
        text=clean,
        tools=tuple(tools),
        error=error,
        reply=reply,
        json_text=json_text,
        latency_ms=latency,
        first_token_ms=first_token,
    )


# --------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\s*\S+")


def split_tokens(text: str) -> list[str]:
    """Split into word tokens (leading whitespace attached); ``"".join`` == text."""
    if not text:
        return []
    toks = _TOKEN_RE.findall(text)
    if not toks:
        return [text]
    consumed = sum(map(len, toks))
    if consumed != len(text):  # trailing whitespace
        toks[-1] += text[consumed:]
    return toks


def estimate_tokens(text: str) -> int:
    """Token estimate: ``max(words, ceil(chars / 4))``."""
    if not text:
        return 0
    return max(len(text.split()), (len(text) + 3) // 4)


def content_text(content: Any) -> str:
    """Text of an OpenAI message ``content`` (string or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, dict):
                t = p.get("text")
                if isinstance(t, str):
                    parts.append(t)
            elif isinstance(p, str):
                parts.append(p)
        return "\n".join(parts)
    return str(content)


# --------------------------------------------------------------------------
# JSON schema -> minimal instance
# --------------------------------------------------------------------------

_STRING_FORMATS = {
    "date-time": "1970-01-01T00:00:00Z",
    "date": "1970-01-01",
    "time": "00:00:00",
    "duration": "P0D",
    "uuid": "00000000-0000-0000-0000-000000000000",
    "email": "x@example.com",
    "uri": "http://example.com",
    "url": "http://example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "hostname": "example.com",
}


def _resolve_ref(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def minimal_from_schema(schema: Any, root: dict[str, Any] | None = None, _depth: int = 0) -> Any:
    """A minimal instance satisfying ``schema``'s required properties.

    strings -> "x" (or a valid value for well-known formats / minLength),
    numbers -> 0 (respecting minimum), booleans -> false, arrays -> [] (or
    minItems copies), objects -> required properties recursively; enum/const
    take their first value; $ref / anyOf / oneOf / allOf are followed.
    """
    if root is None:
        root = schema if isinstance(schema, dict) else {}
    if _depth > 40 or not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return minimal_from_schema(_resolve_ref(schema["$ref"], root), root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if not non_null:
                return None
            return minimal_from_schema(non_null[0], root, _depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        merged: Any = None
        for sub in all_of:
            v = minimal_from_schema(sub, root, _depth + 1)
            if isinstance(merged, dict) and isinstance(v, dict):
                merged.update(v)
            elif merged is None:
                merged = v
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        if rest.get("properties") or rest.get("required"):
            extra = minimal_from_schema(rest, root, _depth + 1)
            if isinstance(merged, dict) and isinstance(extra, dict):
                merged.update(extra)
        return merged
    typ = schema.get("type")
    if isinstance(typ, list):
        non_null_types = [t for t in typ if t != "null"]
        typ = non_null_types[0] if non_null_types else "null"
    if typ is None:
        if "properties" in schema or "required" in schema:
            typ = "object"
        elif "items" in schema:
            typ = "array"
        else:
            return "x"
    if typ == "object":
        props = schema.get("properties") or {}
        out: dict[str, Any] = {}
        for name in schema.get("required") or ():
            out[name] = minimal_from_schema(props.get(name, {}), root, _depth + 1)
        return out
    if typ == "array":
        count = int(schema.get("minItems") or 0)
        if count <= 0:
            return []
        item_schema = schema.get("items")
        prefix = schema.get("prefixItems")
        items = []
        for i in range(count):
            if isinstance(prefix, list) and i < len(prefix):
                items.append(minimal_from_schema(prefix[i], root, _depth + 1))
            else:
                items.append(minimal_from_schema(item_schema or {}, root, _depth + 1))
        return items
    if typ == "string":
        fmt = schema.get("format")
        if fmt in _STRING_FORMATS:
            return _STRING_FORMATS[fmt]
        return "x" * max(1, int(schema.get("minLength") or 1))
    if typ in ("integer", "number"):
        value: float = 0
        if "minimum" in schema and schema["minimum"] is not None and schema["minimum"] > value:
            value = schema["minimum"]
        xmin = schema.get("exclusiveMinimum")
        if isinstance(xmin, (int, float)) and value <= xmin:
            value = xmin + 1
        if "maximum" in schema and schema["maximum"] is not None and schema["maximum"] < value:
            value = schema["maximum"]
        if typ == "integer":
            return int(math.ceil(value))
        return value
    if typ == "boolean":
        return False
    if typ == "null":
        return None
    return "x"


def _response_format_text(response_format: Any) -> str | None:
    if not isinstance(response_format, dict):
        return None
    rtype = response_format.get("type")
    if rtype == "json_schema":
        js = response_format.get("json_schema") or {}
        schema = js.get("schema") if isinstance(js, dict) else None
        if not isinstance(schema, dict):
            return "{}"
        return json.dumps(minimal_from_schema(schema, schema))
    if rtype == "json_object":
        return "{}"
    return None


# --------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------

_SYNONYM_GROUPS = (
    ("car", "cars", "automobile", "automobiles", "vehicle", "vehicles", "auto", "autos", "motorcar"),
    ("dog", "dogs", "puppy", "puppies", "pup", "canine", "canines", "hound", "doggy"),
    ("cat", "cats", "kitten", "kittens", "kitty", "feline", "felines"),
    ("buy", "buys", "bought", "buying", "purchase", "purchases", "purchased", "purchasing", "acquire"),
    ("sell", "sells", "sold", "selling", "vend"),
    ("happy", "glad", "joyful", "cheerful", "delighted", "joyous", "content"),
    ("sad", "unhappy", "sorrowful", "miserable", "gloomy"),
    ("doctor", "doctors", "physician", "physicians", "medic", "clinician"),
    ("big", "large", "huge", "enormous", "giant"),
    ("small", "little", "tiny", "miniature"),
    ("fast", "quick", "rapid", "speedy", "swift"),
    ("house", "home", "residence", "dwelling"),
    ("start", "begin", "commence", "initiate"),
    ("end", "finish", "conclude", "terminate"),
    ("child", "children", "kid", "kids"),
    ("film", "films", "movie", "movies"),
    ("error", "errors", "bug", "bugs", "fault", "defect"),
    ("money", "cash", "funds", "currency"),
    ("smart", "intelligent", "clever", "bright"),
    ("help", "assist", "assistance", "support"),
)
_SYNONYMS: dict[str, str] = {w: group[0] for group in _SYNONYM_GROUPS for w in group}
_STOPWORDS_TEXT = """
a an the of to in on at for and or but is are was were be been being it its this that these those
with as by from i you he she we they me my your our their his her them us do does did so than then
there here what which who whom how why when where not no can could would should will shall may might
must have has had just also very some any all
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_EMBED_WORD_RE = re.compile(r"[a-z0-9]+")


def _stem(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("sses", "xes", "zes", "ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def embedding_terms(text: str) -> list[str]:
    """Normalised terms used for embeddings (lowercase, stopwords removed, stemmed, synonyms)."""
    out = []
    for w in _EMBED_WORD_RE.findall(text.lower()):
        if w in _STOPWORDS:
            continue
        canon = _SYNONYMS.get(w)
        if canon is None:
            s = _stem(w)
            canon = _SYNONYMS.get(s, s)
        out.append(canon)
    return out


@lru_cache(maxsize=16384)
def _term_hash(term: str) -> int:
    return zlib.crc32(b"fake-embed:" + term.encode("utf-8"))


@lru_cache(maxsize=8192)
def embed_text(text: str, dim: int = DEFAULT_EMBEDDING_DIM) -> tuple[float, ...]:
    """Deterministic L2-normalised feature-hashing embedding of ``text``."""
    vec = [0.0] * dim
    terms = embedding_terms(text)
    if not terms:
        vec[0] = 1.0
        return tuple(vec)
    for term in terms:
        h = _term_hash(term)
        vec[h % dim] += -1.0 if (h >> 31) & 1 else 1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # pathological cancellation
        vec[0] = 1.0
        return tuple(vec)
    inv = 1.0 / norm
    return tuple(v * inv if v else 0.0 for v in vec)


@lru_cache(maxsize=8192)
def _embed_b64(text: str, dim: int) -> str:
    vec = embed_text(text, dim)
    return base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode("ascii")


# --------------------------------------------------------------------------
# Server state and app
# --------------------------------------------------------------------------


@dataclass
class FakeLLMState:
    """Mutable configuration + counters shared by the handlers."""

    token_latency_ms: float = 0.0
    first_token_ms: float = 0.0
    embedding_dim: int = DEFAULT_EMBEDDING_DIM
    error_retry_after_ms: float | None = 1.0
    record_requests: int = 200
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    streams: int = 0
    errors: int = 0
    requests: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    _error_attempts: dict[tuple[str, int], int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.requests = collections.deque(maxlen=max(0, self.record_requests) or None)

    def count(self, key: str) -> None:
        self.total += 1
        c = self.counts
        c[key] = c.get(key, 0) + 1

    def record(self, request: web.Request, key: str, body: Any) -> None:
        if self.record_requests > 0:
            self.requests.append({"endpoint": key, "headers": dict(request.headers), "body": body})

    def stats(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "endpoints": dict(self.counts),
            "streams": self.streams,
            "errors": self.errors,
        }

    def reset(self) -> None:
        self.counts.clear()
        self.total = self.streams = self.errors = 0
        self.requests.clear()
        self._error_attempts.clear()


_STATE_KEY = web.AppKey("fake_llm_state", FakeLLMState)

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


def _json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=_encode(obj).encode("utf-8"), status=status, content_type=_JSON_CT, headers=headers
    )


def _error_response(state: FakeLLMState, status: int, message: str | None = None) -> web.Response:
    etype, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    body = {
        "error": {
            "message": message or f"Injected fake error (HTTP {status})",
            "type": etype,
            "param": None,
            "code": code,
        }
    }
    headers = None
    if state.error_retry_after_ms is not None:
        headers = {"retry-after-ms": str(state.error_retry_after_ms)}
    return _json_response(body, status=status, headers=headers)


def _header_float(request: web.Request, name: str) -> float | None:
    v = request.headers.get(name)
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    return _loads(raw) if raw else {}


async def handle_models(request: web.Request) -> web.Response:
    state = request.app[_STATE_KEY]
    state.count("GET /v1/models")
    return _json_response(
        {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": _MODEL_CREATED, "owned_by": "fake-llm"}
                for m in MODELS
            ],
        }
    )


async def handle_model(request: web.Request) -> web.Response:
    state = request.app[_STATE_KEY]
    state.count("GET /v1/models/{id}")
    mid = request.match_info["model"]
    if mid not in MODELS:
        return _json_response(
            {
                "error": {
                    "message": f"The model '{mid}' does not exist",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
            status=404,
        )
    return _json_response({"id": mid, "object": "model", "created": _MODEL_CREATED, "owned_by": "fake-llm"})


def _tool_names(tools: Any) -> list[tuple[str, Any]]:
    out = []
    if isinstance(tools, list):
        for t in tools:
            if isinstance(t, dict):
                fn = t.get("function")
                if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                    out.append((fn["name"], fn.get("parameters")))
    return out


async def handle_chat(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE_KEY]
    key = "POST /v1/chat/completions"
    state.count(key)
    try:
        body = await _read_json(request)
    except ValueError:
        state.errors += 1
        return _error_response(state, 400, "Request body is not valid JSON")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        state.errors += 1
        return _error_response(state, 400, "'messages' is a required property")
    state.record(request, key, body)

    messages: list[Any] = body["messages"]
    model = body.get("model") or MODELS[0]
    stream = bool(body.get("stream"))

    # Last user message, its controls and any tool results after it.
    last_user = -1
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user":
            last_user = i
            break
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
            state.errors += 1
            return _error_response(state, status)

    tool_results = [
        content_text(m.get("content"))
        for m in messages[last_user + 1 :]
        if isinstance(m, dict) and m.get("role") == "tool"
    ]

    # Decide: tool calls or text.
    calls: list[tuple[str, str]] = []
    text: str | None = None
    if tool_results:
        text = "Tool result: " + "\n".join(tool_results)
    else:
        available = _tool_names(body.get("tools"))
        tool_choice = body.get("tool_choice")
        if available and tool_choice != "none":
            names = {n for n, _ in available}
            calls = [c for c in ctl.tools if c[0] in names]
            if not calls:
                forced: str | None = None
                if isinstance(tool_choice, dict):
                    fn = tool_choice.get("function")
                    if isinstance(fn, dict):
                        forced = fn.get("name")
                elif tool_choice == "required":
                    forced = available[0][0]
                if forced is not None:
                    params = next((p for n, p in available if n == forced), None)
                    args = minimal_from_schema(params) if isinstance(params, dict) else {}
                    calls = [(forced, json.dumps(args if isinstance(args, dict) else {}))]
        if not calls:
            if ctl.json_text is not None:
                text = ctl.json_text
            elif ctl.reply is not None:
                text = ctl.reply
            else:
                text = _response_format_text(body.get("response_format"))
                if text is None:
                    text = f"Echo: {ctl.text}" if ctl.text else "Echo:"

    # Latency: marker > header > server-wide.
    latency = ctl.latency_ms
    if latency is None:
        latency = _header_float(request, "X-Fake-Token-Latency-Ms")
    if latency is None:
        latency = state.token_latency_ms
    first = ctl.first_token_ms
    if first is None:
        first = _header_float(request, "X-Fake-First-Token-Ms")
    if first is None:
        first = state.first_token_ms
    latency = max(0.0, float(latency or 0.0)) / 1000.0
    first = max(0.0, float(first or 0.0)) / 1000.0

    # Token budget
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

    n = next(state._ids)
    cid = f"chatcmpl-fake{n:08x}"
    created = int(time.time())

    finish_reason = "stop"
    tokens: list[str] = []
    call_chunks: list[tuple[str, str, list[str]]] = []  # (id, name, arg pieces)
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
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }

    if not stream:
        delay = first + latency * completion_tokens
        if delay > 0:
            await asyncio.sleep(delay)
        message: dict[str, Any] = {"role": "assistant", "content": None if calls else text, "refusal": None}
        if calls:
            message["tool_calls"] = [
                {"id": cid_, "type": "function", "function": {"name": name, "arguments": "".join(pieces)}}
                for cid_, name, pieces in call_chunks
            ]
        return _json_response(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
                ],
                "usage": usage,
            }
        )

    # ---- streaming ----
    state.streams += 1
    so = body.get("stream_options")
    include_usage = isinstance(so, dict) and bool(so.get("include_usage"))
    prefix = (
        f'{{"id":"{cid}","object":"chat.completion.chunk","created":{created},"model":{_encode(model)},'
        '"system_fingerprint":"fp_fake","choices":'
    ).encode()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return (
            b"data: "
            + prefix
            + _encode([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]).encode(
                "utf-8"
            )
            + b"}\n\n"
        )

    # Build the token chunks (each preceded by a sleep when latency applies).
    head: bytes
    token_chunks: list[bytes] = []
    if calls:
        head = chunk({"role": "assistant", "content": None})
        for idx, (cid_, name, pieces) in enumerate(call_chunks):
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
        token_chunks = [chunk({"content": t}) for t in tokens]
    tail = chunk({}, finish_reason)
    if include_usage:
        tail += b"data: " + prefix + b'[],"usage":' + _encode(usage).encode("utf-8") + b"}\n\n"
    tail += b"data: [DONE]\n\n"

    if latency <= 0 and first <= 0:
        return web.Response(body=head + b"".join(token_chunks) + tail, headers=_SSE_HEADERS)

    resp = web.StreamResponse(headers=_SSE_HEADERS)
    await resp.prepare(request)
    await resp.write(head)
    if first > 0:
        await asyncio.sleep(first)
    for c in token_chunks:
        if latency > 0:
            await asyncio.sleep(latency)
        await resp.write(c)
    await resp.write(tail)
    await resp.write_eof()
    return resp


def _embedding_inputs(inp: Any) -> list[str] | None:
    if isinstance(inp, str):
        return [inp]
    if isinstance(inp, list):
        if not inp:
            return None
        if all(isinstance(x, int) for x in inp):  # a single token array
            return [" ".join(f"tok{x}" for x in inp)]
        out = []
        for x in inp:
            if isinstance(x, str):
                out.append(x)
            elif isinstance(x, list) and all(isinstance(t, int) for t in x):
                out.append(" ".join(f"tok{t}" for t in x))
            else:
                return None
        return out
    return None


async def handle_embeddings(request: web.Request) -> web.Response:
    state = request.app[_STATE_KEY]
    key = "POST /v1/embeddings"
    state.count(key)
    try:
        body = await _read_json(request)
    except ValueError:
        state.errors += 1
        return _error_response(state, 400, "Request body is not valid JSON")
    if not isinstance(body, dict):
        state.errors += 1
        return _error_response(state, 400, "Invalid request body")
    state.record(request, key, body)
    inputs = _embedding_inputs(body.get("input"))
    if inputs is None:
        state.errors += 1
        return _error_response(state, 400, "'input' must be a string or a non-empty list of strings")
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
                "embedding": _embed_b64(t, dim) if b64 else embed_text(t, dim),
            }
        )
    return _json_response(
        {
            "object": "list",
            "data": data,
            "model": body.get("model") or "fake-embed",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def handle_stats(request: web.Request) -> web.Response:
    return _json_response(request.app[_STATE_KEY].stats())


async def handle_reset(request: web.Request) -> web.Response:
    request.app[_STATE_KEY].reset()
    return _json_response({"ok": True})


async def handle_requests(request: web.Request) -> web.Response:
    return _json_response(list(request.app[_STATE_KEY].requests))


_CONFIG_FIELDS = ("token_latency_ms", "first_token_ms", "embedding_dim", "error_retry_after_ms")


async def handle_config(request: web.Request) -> web.Response:
    """GET: current runtime knobs. POST {knob: value, ...}: change them, return the new values."""
    state = request.app[_STATE_KEY]
    if request.method == "POST":
        try:
            body = await _read_json(request)
        except ValueError:
            return _error_response(state, 400, "Request body is not valid JSON")
        if not isinstance(body, dict) or set(body) - set(_CONFIG_FIELDS):
            return _error_response(state, 400, f"Allowed keys: {', '.join(_CONFIG_FIELDS)}")
        try:
            values = {
                k: (
                    int(v)
                    if k == "embedding_dim"
                    else None
                    if v is None and k == "error_retry_after_ms"
                    else float(v)
                )
                for k, v in body.items()
            }
        except (TypeError, ValueError):
            return _error_response(state, 400, "Config values must be numbers")
        for k, v in values.items():
            setattr(state, k, v)
    return _json_response({k: getattr(state, k) for k in _CONFIG_FIELDS})


def make_app(state: FakeLLMState | None = None) -> web.Application:
    """Build the aiohttp application (usable with aiohttp's test client)."""
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app[_STATE_KEY] = state or FakeLLMState()
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


# --------------------------------------------------------------------------
# Background-thread server (Python API)
# --------------------------------------------------------------------------


class FakeLLMServer:
    """Fake OpenAI server running in a background thread with its own loop.

    >>> with FakeLLMServer() as srv:
    ...     srv.base_url  # 'http://127.0.0.1:PORT/v1'

    ``token_latency_ms``, ``first_token_ms``, ``embedding_dim`` and
    ``error_retry_after_ms`` can be changed at runtime; they apply to the next
    request.
    """

    host = HOST

    def __init__(
        self,
        port: int = 0,
        *,
        token_latency_ms: float = 0.0,
        first_token_ms: float = 0.0,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
        error_retry_after_ms: float | None = 1.0,
        record_requests: int = 200,
    ) -> None:
        self._requested_port = port
        self.port: int | None = None
        self.state = FakeLLMState(
            token_latency_ms=token_latency_ms,
            first_token_ms=first_token_ms,
            embedding_dim=embedding_dim,
            error_retry_after_ms=error_retry_after_ms,
            record_requests=record_requests,
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    # runtime-settable knobs, forwarded to the shared state
    @property
    def token_latency_ms(self) -> float:
        return self.state.token_latency_ms

    @token_latency_ms.setter
    def token_latency_ms(self, value: float) -> None:
        self.state.token_latency_ms = float(value)

    @property
    def first_token_ms(self) -> float:
        return self.state.first_token_ms

    @first_token_ms.setter
    def first_token_ms(self, value: float) -> None:
        self.state.first_token_ms = float(value)

    @property
    def embedding_dim(self) -> int:
        return self.state.embedding_dim

    @embedding_dim.setter
    def embedding_dim(self, value: int) -> None:
        self.state.embedding_dim = int(value)

    @property
    def error_retry_after_ms(self) -> float | None:
        return self.state.error_retry_after_ms

    @error_retry_after_ms.setter
    def error_retry_after_ms(self, value: float | None) -> None:
        self.state.error_retry_after_ms = value

    @property
    def url(self) -> str:
        """Root URL without ``/v1`` (``/_stats`` etc. live here)."""
        if self.port is None:
            raise RuntimeError("FakeLLMServer is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        """Same data as ``GET /_stats``."""
        return self.state.stats()

    def reset(self) -> None:
        """Same as ``POST /_reset``: clear counters, recorded requests, error attempts."""
        loop = self._loop
        if loop is not None and self.running:
            fut = asyncio.run_coroutine_threadsafe(self._areset(), loop)
            fut.result(timeout=5)
        else:
            self.state.reset()

    async def _areset(self) -> None:
        self.state.reset()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recent request bodies/headers (most recent last), ``{"endpoint","headers","body"}``."""
        return list(self.state.requests)

    def start(self, timeout: float = 10.0) -> FakeLLMServer:
        if self.running:
            return self
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                runner = web.AppRunner(make_app(self.state), access_log=None, shutdown_timeout=1.0)
                loop.run_until_complete(runner.setup())
                site = web.TCPSite(runner, HOST, self._requested_port, backlog=1024, reuse_address=True)
                loop.run_until_complete(site.start())
                self._runner = runner
                self.port = int(runner.addresses[0][1])
            except BaseException as exc:  # pragma: no cover - startup failure
                error.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(runner.cleanup())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        t = threading.Thread(target=run, name="fake-llm-server", daemon=True)
        self._thread = t
        t.start()
        if not ready.wait(timeout):
            raise RuntimeError("FakeLLMServer did not start in time")
        if error:
            self._thread = None
            raise error[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        t, loop = self._thread, self._loop
        if t is None or loop is None:
            return
        if t.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            t.join(timeout)
        self._thread = None
        self._loop = None
        self._runner = None
        self.port = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.port else "stopped"
        return f"<FakeLLMServer {where} token_latency_ms={self.token_latency_ms}>"


class FakeLLMProcess:
    """The same server in a separate process (``python -m bench.fake_llm --port 0``).

    Prefer this for benchmarks: an in-process server thread competes for the GIL
    with the code being measured. Same surface as :class:`FakeLLMServer`
    (``start``/``stop``/context manager, ``base_url``, ``url``, ``stats()``,
    ``reset()``, settable ``token_latency_ms``/``first_token_ms``), implemented
    over HTTP (``/_stats``, ``/_reset``, ``/_config``).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        token_latency_ms: float = 0.0,
        first_token_ms: float = 0.0,
        embedding_dim: int = DEFAULT_EMBEDDING_DIM,
        record_requests: int = 0,
        python: str | None = None,
    ) -> None:
        self._argv = [
            python or sys.executable,
            "-m",
            "bench.fake_llm",
            "--port",
            str(port),
            "--token-latency-ms",
            str(token_latency_ms),
            "--first-token-ms",
            str(first_token_ms),
            "--embedding-dim",
            str(embedding_dim),
            "--record-requests",
            str(record_requests),
        ]
        self._proc: Any = None
        self.port: int | None = None

    def start(self, timeout: float = 20.0) -> FakeLLMProcess:
        import os
        import subprocess

        if self._proc is not None:
            return self
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            self._argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._proc = proc
        result: list[str] = []

        def read_banner() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                m = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
                if m:
                    result.append(m.group(1))
                    break
            # keep draining so the child never blocks on a full pipe
            for _ in proc.stdout:
                pass

        threading.Thread(target=read_banner, name="fake-llm-process-stdout", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not result:
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake LLM process failed to start")
            time.sleep(0.01)
        self.port = int(result[0])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        import subprocess

        proc, self._proc = self._proc, None
        self.port = None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:  # pragma: no cover
                proc.kill()
                proc.wait(timeout)

    def __enter__(self) -> FakeLLMProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeLLMProcess is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        import urllib.request

        data = None if payload is None else _encode(payload).encode("utf-8")
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": _JSON_CT}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local URL
            return _loads(resp.read())

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_stats")

    def reset(self) -> None:
        self._call("POST", "/_reset", {})

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_requests")

    def config(self, **changes: Any) -> dict[str, Any]:
        """Read (no args) or change runtime knobs via ``/_config``."""
        if changes:
            return self._call("POST", "/_config", changes)
        return self._call("GET", "/_config")

    @property
    def token_latency_ms(self) -> float:
        return float(self.config()["token_latency_ms"])

    @token_latency_ms.setter
    def token_latency_ms(self, value: float) -> None:
        self.config(token_latency_ms=value)

    @property
    def first_token_ms(self) -> float:
        return float(self.config()["first_token_ms"])

    @first_token_ms.setter
    def first_token_ms(self, value: float) -> None:
        self.config(first_token_ms=value)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> None:
    state = FakeLLMState(
        token_latency_ms=args.token_latency_ms,
        first_token_ms=args.first_token_ms,
        embedding_dim=args.embedding_dim,
        record_requests=args.record_requests,
    )
    app = make_app(state)
    if args.access_log:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        runner = web.AppRunner(app, shutdown_timeout=1.0)
    else:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, args.port, backlog=1024, reuse_address=True)
    await site.start()
    port = runner.addresses[0][1]
    print(
        f"fake LLM listening on http://{HOST}:{port}/v1 (token latency {args.token_latency_ms} ms)",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.fake_llm", description="Fake OpenAI-compatible LLM server"
    )
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = pick a free port)")
    p.add_argument("--token-latency-ms", type=float, default=0.0, help="sleep before every emitted token")
    p.add_argument("--first-token-ms", type=float, default=0.0, help="extra sleep before the first token")
    p.add_argument("--embedding-dim", type=int, default=DEFAULT_EMBEDDING_DIM, help="default embedding size")
    p.add_argument(
        "--record-requests", type=int, default=200, help="keep the last N request bodies (0 = off)"
    )
    p.add_argument("--access-log", action="store_true", help="log every request (slower)")
    args = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
