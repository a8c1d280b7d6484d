"""Throughput: completed runs per second with the fake LLM taking 500 ms per answer and 200 concurrent
API clients, with web (daphne), a Celery run worker and Redis on this machine.

Each client loops: POST /api/v1/agents/{id}/run (no stream) and waits for the answer. Reference in the
same run: the same 200 clients calling the fake server directly (the ceiling set by the 500 ms answer).
Two run worker processes of 100 threads (BENCH_WORKERS, BENCH_WORKER_CONCURRENCY): the consumer of a
single process takes each message with three Redis round trips on its main thread, each waiting for
the GIL among the run threads, and tops out near 55 messages/s here (runs then queued for 2.5 s).
Target: >= 100 runs/s with 0 errors.  Run: python -m bench.bench_throughput
"""

from __future__ import annotations

import asyncio
import os
import time

os.environ.setdefault("AGNO_TELEMETRY", "false")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "200"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
ANSWER_MS = 500


async def _load(url: str, headers: dict[str, str], body_of, check) -> tuple[int, int, list[float]]:
    # aiohttp, not httpx: httpx's async client tops out near 70 req/s here and would measure itself.
    import aiohttp

    done = errors = 0
    latencies: list[float] = []
    deadline = time.monotonic() + SECONDS
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as http:

        async def client(n: int) -> None:
            nonlocal done, errors
            i = 0
            while time.monotonic() < deadline:
                i += 1
                t = time.perf_counter()
                try:
                    async with http.post(url, json=body_of(n, i)) as response:
                        body = await response.json(content_type=None)
                        ok = response.status == 200 and check(body, n, i)
                except Exception:
                    ok = False
                latencies.append((time.perf_counter() - t) * 1000)
                if ok:
                    done += 1
                else:
                    errors += 1

        await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    return done, errors, latencies


def main() -> None:
    from bench.stack import stack, summary

    concurrency = int(os.environ.get("BENCH_WORKER_CONCURRENCY", "100"))
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    running = stack(first_token_ms=ANSWER_MS, worker_concurrency=concurrency, workers=workers)
    with running as (base, seeded, llm):
        ref_done, ref_err, _ = asyncio.run(
            _load(
                llm.base_url + "/chat/completions",
                {"Authorization": "Bearer x"},
                lambda n, i: {"model": "fake-gpt", "messages": [{"role": "user", "content": f"c{n} r{i}"}]},
                lambda body, n, i: body["choices"][0]["message"]["content"] == f"Echo: c{n} r{i}",
            )
        )
        done, errors, lat = asyncio.run(
            _load(
                f"{base}/api/v1/agents/{seeded.agent_id}/run",
                {"Authorization": f"Bearer {seeded.api_key}"},
                lambda n, i: {"input": f"c{n} r{i}"},
                lambda body, n, i: body.get("output") == f"Echo: c{n} r{i}",
            )
        )
        s = summary(lat)
        print(
            f"\nThroughput: {CLIENTS} concurrent clients for {SECONDS:.0f} s, fake LLM answers in {ANSWER_MS} ms, "
            f"{workers} run worker(s) with {concurrency} threads each"
        )
        print(f"{'path':<36}{'runs/s':>10}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}")
        print(f"{'direct to the fake LLM (ceiling)':<36}{ref_done / SECONDS:>10.1f}{ref_err:>8}")
        print(
            f"{'POST /api/v1/agents/{id}/run':<36}{done / SECONDS:>10.1f}{errors:>8}{s['p50']:>10.1f}{s['p95']:>10.1f}"
        )
        print(
            f"\n{done / SECONDS:.1f} runs/s = {done / max(1, ref_done):.0%} of the direct ceiling (target >= 100/s, 0 errors)"
        )


if __name__ == "__main__":
    main()
