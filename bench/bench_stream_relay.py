"""Stream relay: the delay from the fake LLM emitting a chunk to a websocket client receiving it.

The fake server stamps each streamed token with the wall-clock time it was sent ([[clock:N]]); the
client subtracts that from its own clock on arrival. Path measured: fake LLM -> openai client in
the Celery worker -> agno -> RunEvent + channel layer (Redis) -> daphne consumer -> websocket.
Reference in the same run: the same chunks read directly from the fake server by an openai client.
Targets: relay p50 <= 3 ms, first token p99 <= 30 ms.   Run: python -m bench.bench_stream_relay
"""

from __future__ import annotations

import asyncio
import json
import os
import time

os.environ.setdefault("AGNO_TELEMETRY", "false")

RUNS = int(os.environ.get("BENCH_RELAY_RUNS", "30"))
TOKENS = 40
MESSAGE = f"[[first_token:250]] [[latency:5]] [[clock:{TOKENS}]]"


def _session_cookie(user_id: int) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.cached_db import SessionStore

    from accounts.models import User

    user = User.objects.get(pk=user_id)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


async def _one_run(base: str, cookie: str, agent, user) -> tuple[list[float], float | None]:
    import aiohttp
    from asgiref.sync import sync_to_async

    from agents import services

    run = await sync_to_async(services.run_create)(agent=agent, user=user, input=MESSAGE)
    delays: list[float] = []
    first: float | None = None
    url = base.replace("http", "ws") + f"/ws/runs/{run.pk}/?format=json"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={"Cookie": cookie, "Origin": base}) as ws,
    ):
        async for msg in ws:
            now = time.time_ns()
            event = json.loads(msg.data)
            if event["type"] == "delta":
                for stamp in event["payload"]["text"].split():
                    if stamp.isdigit():
                        delay = (now - int(stamp)) / 1e6
                        if first is None:
                            first = delay
                        else:
                            delays.append(delay)
            if event["type"] == "done":
                break
    return delays, first


def _direct(base_url: str) -> list[float]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="x")
    delays = []
    for _ in range(5):
        stream = client.chat.completions.create(
            model="fake-gpt", stream=True, messages=[{"role": "user", "content": MESSAGE}]
        )
        for chunk in stream:
            now = time.time_ns()
            if chunk.choices and chunk.choices[0].delta.content:
                for stamp in chunk.choices[0].delta.content.split():
                    if stamp.isdigit():
                        delays.append((now - int(stamp)) / 1e6)
    return delays


def main() -> None:
    from bench.stack import print_table, stack, summary

    with stack(worker_concurrency=4) as (base, seeded, llm):
        from accounts.models import User
        from agents.models import Agent

        agent = Agent.objects.get(pk=seeded.agent_id)
        user = User.objects.get(pk=seeded.user_id)
        cookie = _session_cookie(user.pk)
        reference = _direct(llm.base_url)

        async def go():
            relay, firsts = [], []
            for _ in range(RUNS):
                delays, first = await _one_run(base, cookie, agent, user)
                relay += delays
                if first is not None:
                    firsts.append(first)
            return relay, firsts

        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        relay, firsts = asyncio.run(go())
        r, f, d = summary(relay), summary(firsts), summary(reference)
        print_table(
            f"Stream relay over the websocket ({RUNS} runs x {TOKENS} tokens)",
            [
                ("relay: chunk -> websocket client", r),
                ("first token -> websocket client", f),
                ("reference: chunk -> openai client", d),
            ],
        )
        print(
            f"\nrelay p50 {r['p50']:.2f} ms (target <= 3 ms); first token p99 {f['p99']:.2f} ms (target <= 30 ms); "
            f"relay adds {r['p50'] - d['p50']:.2f} ms p50 over reading the model directly"
        )


if __name__ == "__main__":
    main()
