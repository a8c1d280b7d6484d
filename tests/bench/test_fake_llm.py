"""Tests for bench/fake_llm.py — no Django needed.

Run: AGNO_TELEMETRY=false .venv/bin/python -m pytest tests/bench -q
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import struct
import time
import urllib.request

import openai
import pytest

os.environ.setdefault("AGNO_TELEMETRY", "false")

from bench.fake_llm import (  # noqa: E402
    DEFAULT_EMBEDDING_DIM,
    FakeLLMProcess,
    FakeLLMServer,
    embed_text,
    minimal_from_schema,
    parse_controls,
    split_tokens,
)


@pytest.fixture(scope="module")
def server():
    with FakeLLMServer(port=0) as srv:
        yield srv


@pytest.fixture
def srv(server):
    """The module server with counters and runtime knobs reset for each test."""
    server.reset()
    server.token_latency_ms = 0
    server.first_token_ms = 0
    yield server
    server.token_latency_ms = 0
    server.first_token_ms = 0


@pytest.fixture
def client(srv):
    return openai.OpenAI(base_url=srv.base_url, api_key="any-key", max_retries=0)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


def _user(text: str):
    return [{"role": "system", "content": "You are a test."}, {"role": "user", "content": text}]


# ---------------------------------------------------------------- basics


def test_base_url_and_models(srv, client):
    assert srv.base_url.startswith("http://127.0.0.1:")
    assert srv.base_url.endswith("/v1")
    assert srv.port and srv.port > 0
    ids = [m.id for m in client.models.list()]
    assert ids == ["fake-gpt", "fake-gpt-mini", "fake-embed"]
    assert client.models.retrieve("fake-gpt-mini").id == "fake-gpt-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_non_stream_text_and_usage(client):
    r = client.chat.completions.create(model="fake-gpt", messages=_user("hello brave new world"))
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello brave new world"
    assert choice.finish_reason == "stop"
    assert r.model == "fake-gpt"
    assert r.usage.completion_tokens == 5  # "Echo:", "hello", "brave", "new", "world"
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # deterministic
    r2 = client.chat.completions.create(model="fake-gpt", messages=_user("hello brave new world"))
    assert r2.choices[0].message.content == choice.message.content
    assert r2.usage.prompt_tokens == r.usage.prompt_tokens


def test_prompt_tokens_grow_with_input(client):
    short = client.chat.completions.create(model="fake-gpt", messages=_user("hi"))
    long = client.chat.completions.create(model="fake-gpt", messages=_user("hi " * 200))
    assert long.usage.prompt_tokens > short.usage.prompt_tokens + 150


def test_streaming_deltas_and_usage(client):
    text = "the quick brown fox jumps"
    full = client.chat.completions.create(model="fake-gpt", messages=_user(text)).choices[0].message.content
    stream = client.chat.completions.create(
        model="fake-gpt", messages=_user(text), stream=True, stream_options={"include_usage": True}
    )
    deltas, usage, finish = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.content:
                deltas.append(ch.delta.content)
            if ch.finish_reason:
                finish = ch.finish_reason
    assert "".join(deltas) == full == "Echo: the quick brown fox jumps"
    assert len(deltas) == 6
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens == len(deltas)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streaming_without_include_usage_has_no_usage(client):
    chunks = list(client.chat.completions.create(model="fake-gpt", messages=_user("abc"), stream=True))
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: abc"


def test_reply_and_json_markers(client):
    r = client.chat.completions.create(
        model="fake-gpt", messages=_user("say [[reply:Exactly  this, please.]]")
    )
    assert r.choices[0].message.content == "Exactly  this, please."
    payload = {"a": [[1, 2]], "b": {"c": "d]]"}}
    r = client.chat.completions.create(model="fake-gpt", messages=_user(f"[[json:{json.dumps(payload)}]]"))
    assert json.loads(r.choices[0].message.content) == payload


def test_max_tokens_truncates(client):
    r = client.chat.completions.create(
        model="fake-gpt", messages=_user("one two three four five"), max_tokens=3
    )
    assert r.choices[0].message.content == "Echo: one two"
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_list_content_parts(client):
    msgs = [
        {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "two"}]}
    ]
    r = client.chat.completions.create(model="fake-gpt", messages=msgs)
    assert r.choices[0].message.content == "Echo: part one\ntwo"


# ---------------------------------------------------------------- tools

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}


def test_tool_call_non_stream_and_round_trip(client):
    msgs = _user('weather? [[tool:get_weather {"city": "Paris", "days": 2}]]')
    r = client.chat.completions.create(model="fake-gpt", messages=msgs, tools=[WEATHER_TOOL])
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls"
    assert ch.message.content is None
    (tc,) = ch.message.tool_calls
    assert tc.id.startswith("call_")
    assert tc.function.name == "get_weather"
    assert json.loads(tc.function.arguments) == {"city": "Paris", "days": 2}
    assert r.usage.completion_tokens > 0

    msgs = msgs + [
        {"role": "assistant", "content": None, "tool_calls": [tc.model_dump()]},
        {"role": "tool", "tool_call_id": tc.id, "content": "Sunny, 21C"},
    ]
    r2 = client.chat.completions.create(model="fake-gpt", messages=msgs, tools=[WEATHER_TOOL])
    assert r2.choices[0].message.content == "Tool result: Sunny, 21C"
    assert r2.choices[0].finish_reason == "stop"


def test_tool_call_streaming_deltas(client):
    msgs = _user('[[tool:get_weather {"city": "New York", "days": 3}]]')
    stream = client.chat.completions.create(
        model="fake-gpt",
        messages=msgs,
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    ids, names, args, finish, usage = set(), [], "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for ch in chunk.choices:
            for d in ch.delta.tool_calls or []:
                assert d.index == 0
                if d.id:
                    ids.add(d.id)
                if d.function and d.function.name:
                    names.append(d.function.name)
                if d.function and d.function.arguments:
                    args += d.function.arguments
            finish = ch.finish_reason or finish
    assert len(ids) == 1 and names == ["get_weather"]
    assert json.loads(args) == {"city": "New York", "days": 3}
    assert finish == "tool_calls"
    assert usage is not None and usage.completion_tokens > 1


def test_tool_marker_ignored_without_matching_tool(client):
    r = client.chat.completions.create(
        model="fake-gpt", messages=_user('hi [[tool:other {"x": 1}]]'), tools=[WEATHER_TOOL]
    )
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].message.content == "Echo: hi"
    r = client.chat.completions.create(
        model="fake-gpt", messages=_user('hi [[tool:get_weather {"city": "x"}]]')
    )
    assert r.choices[0].message.content == "Echo: hi"


def test_parallel_and_forced_tool_calls(client):
    msgs = _user('[[tool:get_weather {"city": "A"}]] [[tool:get_weather {"city": "B"}]]')
    r = client.chat.completions.create(model="fake-gpt", messages=msgs, tools=[WEATHER_TOOL])
    assert [json.loads(t.function.arguments)["city"] for t in r.choices[0].message.tool_calls] == ["A", "B"]
    assert len({t.id for t in r.choices[0].message.tool_calls}) == 2
    # tool_choice forcing a function without a marker -> minimal args from the schema
    r = client.chat.completions.create(
        model="fake-gpt",
        messages=_user("no marker"),
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    (tc,) = r.choices[0].message.tool_calls
    assert json.loads(tc.function.arguments) == {"city": "x", "days": 1}
    r = client.chat.completions.create(
        model="fake-gpt",
        messages=_user('[[tool:get_weather {"city": "A"}]]'),
        tools=[WEATHER_TOOL],
        tool_choice="none",
    )
    assert r.choices[0].message.tool_calls is None


def _agno_agent(base_url: str, **kwargs):
    from agno.agent import Agent
    from agno.models.openai import OpenAIChat

    return Agent(model=OpenAIChat(id="fake-gpt", base_url=base_url, api_key="x"), telemetry=False, **kwargs)


def test_agno_agent_tool_round_trip(srv):
    called: list[str] = []

    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        called.append(city)
        return f"Sunny in {city}"

    agent = _agno_agent(srv.base_url, tools=[get_weather])
    out = agent.run('What is the weather in Paris? [[tool:get_weather {"city": "Paris"}]]')
    assert called == ["Paris"]
    assert isinstance(out.content, str)
    assert "Sunny in Paris" in out.content
    assert out.content == "Tool result: Sunny in Paris"
    assert [t.tool_name for t in out.tools or []] == ["get_weather"]
    # first request offered the tool, second carried the tool result
    chat_reqs = [r["body"] for r in srv.requests if r["endpoint"] == "POST /v1/chat/completions"]
    assert len(chat_reqs) == 2
    assert chat_reqs[0]["tools"][0]["function"]["name"] == "get_weather"
    assert any(m.get("role") == "tool" for m in chat_reqs[1]["messages"])

    # streaming through agno accumulates tool-call argument deltas correctly
    events = list(agent.run('again [[tool:get_weather {"city": "Rome"}]]', stream=True))
    text = "".join(
        e.content for e in events if getattr(e, "event", "") == "RunContent" and isinstance(e.content, str)
    )
    assert called == ["Paris", "Rome"]
    assert text == "Tool result: Sunny in Rome"


def test_agno_plain_and_structured_output(srv):
    from pydantic import BaseModel

    agent = _agno_agent(srv.base_url)
    assert agent.run("hello agno").content == "Echo: hello agno"

    class Inner(BaseModel):
        n: int
        ok: bool

    class Out(BaseModel):
        title: str
        score: float
        tags: list[str]
        inner: Inner

    out = _agno_agent(srv.base_url, output_schema=Out).run("structured please")
    assert isinstance(out.content, Out)
    assert out.content == Out(title="x", score=0, tags=[], inner=Inner(n=0, ok=False))


# ---------------------------------------------------------------- errors


def test_error_injection(client, srv):
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model="fake-gpt", messages=_user("boom [[error:500]]"))
    assert ei.value.status_code == 500
    assert ei.value.body["type"] == "server_error"
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="fake-gpt", messages=_user("[[error:429]]"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="fake-gpt", messages=_user("[[error:400]]"), stream=True)
    assert srv.stats()["errors"] == 3


def test_error_first_n_then_success_with_retries(srv):
    retrying = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=2)
    t0 = time.perf_counter()
    r = retrying.chat.completions.create(model="fake-gpt", messages=_user("flaky [[error:503:2]]"))
    assert r.choices[0].message.content == "Echo: flaky"
    assert time.perf_counter() - t0 < 1.0  # retry-after-ms keeps client retries fast
    assert srv.stats()["endpoints"]["POST /v1/chat/completions"] == 3
    assert srv.stats()["errors"] == 2


# ---------------------------------------------------------------- structured output


def test_json_schema_response_format(client):
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "score": {"type": "number"},
            "active": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
            },
            "optional": {"type": "string"},
        },
        "required": ["name", "age", "score", "active", "tags", "address"],
        "additionalProperties": False,
    }
    rf = {"type": "json_schema", "json_schema": {"name": "Person", "schema": schema, "strict": True}}
    r = client.chat.completions.create(model="fake-gpt", messages=_user("make a person"), response_format=rf)
    data = json.loads(r.choices[0].message.content)
    assert data == {"name": "x", "age": 0, "score": 0, "active": False, "tags": [], "address": {"city": "x"}}
    # [[json:...]] wins over the schema
    r = client.chat.completions.create(
        model="fake-gpt", messages=_user('[[json:{"name": "Ann", "age": 3}]]'), response_format=rf
    )
    assert json.loads(r.choices[0].message.content) == {"name": "Ann", "age": 3}
    r = client.chat.completions.create(
        model="fake-gpt", messages=_user("x"), response_format={"type": "json_object"}
    )
    assert json.loads(r.choices[0].message.content) == {}


def test_minimal_from_schema_refs_enums_formats():
    schema = {
        "$defs": {
            "Kind": {"enum": ["a", "b"]},
            "Item": {"type": "object", "properties": {"k": {"$ref": "#/$defs/Kind"}}, "required": ["k"]},
        },
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 1},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 5}]},
            "when": {"type": "string", "format": "date-time"},
            "c": {"const": 7},
            "t": {"type": ["null", "boolean"]},
        },
        "required": ["items", "maybe", "when", "c", "t"],
    }
    assert minimal_from_schema(schema) == {
        "items": [{"k": "a"}],
        "maybe": 5,
        "when": "1970-01-01T00:00:00Z",
        "c": 7,
        "t": False,
    }


# ---------------------------------------------------------------- embeddings


def test_embeddings_deterministic_and_normalised(client):
    texts = ["the red car", "a happy puppy", "quarterly tax report"]
    a = client.embeddings.create(model="fake-embed", input=texts, encoding_format="float")
    b = client.embeddings.create(model="fake-embed", input=texts, encoding_format="float")
    assert [d.embedding for d in a.data] == [d.embedding for d in b.data]
    assert [d.index for d in a.data] == [0, 1, 2]
    for d in a.data:
        assert len(d.embedding) == DEFAULT_EMBEDDING_DIM
        assert math.isclose(sum(x * x for x in d.embedding), 1.0, rel_tol=1e-9)
    assert a.usage.prompt_tokens > 0
    # default openai-client encoding is base64: must decode to the same vectors
    c = client.embeddings.create(model="fake-embed", input=texts)
    for d_float, d_b64 in zip(a.data, c.data, strict=True):
        assert all(
            math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7)
            for x, y in zip(d_float.embedding, d_b64.embedding, strict=True)
        )
    single = client.embeddings.create(model="fake-embed", input="the red car", encoding_format="float")
    assert single.data[0].embedding == a.data[0].embedding


def test_embeddings_dimensions(client, srv):
    r = client.embeddings.create(model="fake-embed", input="hello", dimensions=64, encoding_format="float")
    assert len(r.data[0].embedding) == 64
    srv.embedding_dim = 128
    try:
        r = client.embeddings.create(model="fake-embed", input="hello", encoding_format="float")
        assert len(r.data[0].embedding) == 128
    finally:
        srv.embedding_dim = DEFAULT_EMBEDDING_DIM


def test_embeddings_synonyms_closer_than_unrelated(client):
    def emb(*texts):
        r = client.embeddings.create(model="fake-embed", input=list(texts), encoding_format="float")
        return [d.embedding for d in r.data]

    pairs = [
        ("car", "automobile", "banana"),
        ("dog", "puppy", "spreadsheet"),
        ("buy", "purchase", "ocean"),
        ("happy", "joyful", "granite"),
        ("doctor", "physician", "violin"),
    ]
    for word, syn, unrelated in pairs:
        w, s, u = emb(word, syn, unrelated)
        assert _cos(w, s) > _cos(w, u) + 0.5, (word, syn, unrelated)
    q, d1, d2 = emb("I want to purchase an automobile", "Where can I buy a car?", "My dog likes the park")
    assert _cos(q, d1) > 0.75  # {want, buy, car} vs {buy, car}
    assert _cos(q, d1) > _cos(q, d2)
    # plural stemming
    a, b = emb("puppies and cars", "puppy car")
    assert _cos(a, b) > 0.99


def test_embed_text_helper():
    assert embed_text("Cars!") == embed_text("car")
    assert len(embed_text("x", 16)) == 16
    assert math.isclose(sum(v * v for v in embed_text("")), 1.0)


def test_b64_matches_struct_layout(srv):
    body = json.dumps(
        {"model": "fake-embed", "input": "car", "encoding_format": "base64", "dimensions": 8}
    ).encode()
    req = urllib.request.Request(
        srv.base_url + "/embeddings", data=body, headers={"Content-Type": "application/json"}
    )
    data = json.loads(urllib.request.urlopen(req).read())
    vec = struct.unpack("<8f", base64.b64decode(data["data"][0]["embedding"]))
    assert all(
        math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7) for x, y in zip(vec, embed_text("car", 8), strict=True)
    )


# ---------------------------------------------------------------- latency


def _timed_stream(client, messages, **kw):
    t0 = time.perf_counter()
    first = None
    n = 0
    for chunk in client.chat.completions.create(model="fake-gpt", messages=messages, stream=True, **kw):
        if chunk.choices and chunk.choices[0].delta.content:
            n += 1
            if first is None:
                first = time.perf_counter() - t0
    return time.perf_counter() - t0, first, n


def test_per_token_latency_header(client):
    msgs = _user("[[reply:one two three four five]]")  # 5 tokens
    t0 = time.perf_counter()
    client.chat.completions.create(model="fake-gpt", messages=msgs)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    client.chat.completions.create(
        model="fake-gpt", messages=msgs, extra_headers={"X-Fake-Token-Latency-Ms": "20"}
    )
    slow = time.perf_counter() - t0
    assert slow >= 0.08
    assert slow > fast
    total, _, n = _timed_stream(client, msgs, extra_headers={"X-Fake-Token-Latency-Ms": "20"})
    assert n == 5 and total >= 0.08


def test_server_wide_latency_and_first_token(client, srv):
    msgs = _user("[[reply:one two three four five]]")
    srv.token_latency_ms = 20
    total, first, n = _timed_stream(client, msgs)
    assert n == 5 and total >= 0.08
    srv.token_latency_ms = 0
    total, first, n = _timed_stream(client, msgs, extra_headers={"X-Fake-First-Token-Ms": "150"})
    assert first >= 0.14
    assert total < first + 0.5  # the other tokens came without per-token delay
    total, first, n = _timed_stream(client, _user("[[reply:a b c]] [[latency:30]]"))
    assert n == 3 and total >= 0.08


@pytest.mark.asyncio
async def test_concurrent_requests_overlap(srv):
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    msgs = _user("[[reply:a b c d e]]")
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *[
            client.chat.completions.create(
                model="fake-gpt", messages=msgs, extra_headers={"X-Fake-Token-Latency-Ms": "40"}
            )
            for _ in range(20)
        ]
    )
    elapsed = time.perf_counter() - t0
    await client.close()
    assert all(r.choices[0].message.content == "a b c d e" for r in results)
    assert 0.19 <= elapsed < 2.0  # 20 x 200 ms sequentially would be 4 s


# ---------------------------------------------------------------- stats / helpers


def test_stats_and_reset(srv, client):
    client.models.list()
    client.chat.completions.create(model="fake-gpt", messages=_user("a"))
    client.chat.completions.create(model="fake-gpt", messages=_user("a"), stream=True).close()
    client.embeddings.create(model="fake-embed", input="a")
    stats = json.loads(urllib.request.urlopen(srv.url + "/_stats").read())
    assert stats["endpoints"] == {
        "GET /v1/models": 1,
        "POST /v1/chat/completions": 2,
        "POST /v1/embeddings": 1,
    }
    assert stats["total"] == 4 and stats["streams"] == 1
    # one keep-alive connection, until the half-read stream was closed; the embeddings call needed another
    assert stats["connections"] == 2
    assert stats == srv.stats()
    assert srv.requests[-1]["headers"]["Authorization"] == "Bearer any-key"
    urllib.request.urlopen(urllib.request.Request(srv.url + "/_reset", data=b"", method="POST"))
    assert srv.stats() == {"total": 0, "endpoints": {}, "streams": 0, "errors": 0, "connections": 0}
    assert srv.requests == []


def test_routes_without_v1_prefix(srv):
    c = openai.OpenAI(base_url=srv.url, api_key="x", max_retries=0)
    assert (
        c.chat.completions.create(model="fake-gpt", messages=_user("ok")).choices[0].message.content
        == "Echo: ok"
    )


def test_parse_controls_and_split_tokens():
    c = parse_controls(
        'hi [[tool:f {"a": [1, {"b": "]]"}]}]] [[error:503:2]] [[latency:5]] [[first_token:7]] [[bad'
    )
    assert c.tools == (("f", '{"a": [1, {"b": "]]"}]}'),)
    assert c.error == (503, 2)
    assert c.latency_ms == 5 and c.first_token_ms == 7
    assert c.text == "hi [[bad"
    assert parse_controls("[[tool:noargs]]").tools == (("noargs", "{}"),)
    for s in ["", "a", "  lead and trail  ", "multi\nline\ttext"]:
        assert "".join(split_tokens(s)) == s


def test_start_stop_restart_and_port_zero():
    s = FakeLLMServer()
    s.start()
    port = s.port
    assert port
    c = openai.OpenAI(base_url=s.base_url, api_key="x", max_retries=0)
    assert c.models.list().data
    s.stop()
    assert not s.running
    with pytest.raises(RuntimeError):
        _ = s.base_url
    with FakeLLMServer() as s2:
        assert s2.port != 0


def test_config_endpoint(srv, client):
    def post(payload):
        req = urllib.request.Request(
            srv.url + "/_config",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(req).read())

    cfg = post({"token_latency_ms": 15})
    assert cfg["token_latency_ms"] == 15 == srv.token_latency_ms
    total, _, n = _timed_stream(client, _user("[[reply:a b c d]]"))
    assert n == 4 and total >= 0.05
    assert post({"token_latency_ms": 0})["token_latency_ms"] == 0


def test_fake_llm_process():
    with FakeLLMProcess(token_latency_ms=0) as proc:
        assert proc.running and proc.base_url.startswith("http://127.0.0.1:")
        c = openai.OpenAI(base_url=proc.base_url, api_key="x", max_retries=0)
        assert c.chat.completions.create(model="fake-gpt", messages=_user("hi")).choices[
            0
        ].message.content == ("Echo: hi")
        assert proc.stats()["endpoints"] == {"POST /v1/chat/completions": 1}
        proc.token_latency_ms = 20
        assert proc.token_latency_ms == 20
        total, _, n = _timed_stream(c, _user("[[reply:one two three four five]]"))
        assert n == 5 and total >= 0.08
        proc.reset()
        assert proc.stats()["total"] == 0
    assert not proc.running
