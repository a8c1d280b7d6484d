"""Run overhead: POST /api/v1/agents/{id}/run (no stream, fake LLM at 0 ms) against a direct openai call
to the same fake server, measured in the same process run.

Our path: HTTP -> daphne -> auth + run row + message -> Celery (Redis) -> worker -> agno -> fake LLM ->
events + final message -> done signal -> response. Targets: difference <= 10 ms p50, <= 25 ms p95.
Run: python -m bench.bench_run_overhead
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("AGNO_TELEMETRY", "false")
N = int(os.environ.get("BENCH_OVERHEAD_N", "200"))


def main() -> None:
    import httpx
    import openai

    from bench.stack import print_table, stack, summary

    with stack(worker_concurrency=4) as (base, seeded, llm):
        direct = openai.OpenAI(base_url=llm.base_url, api_key="x")
        http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {seeded.api_key}"}, timeout=60)
        url = f"/api/v1/agents/{seeded.agent_id}/run"
        for _ in range(10):  # warm both paths
            direct.chat.completions.create(model="fake-gpt", messages=[{"role": "user", "content": "warm"}])
            http.post(url, json={"input": "warm"}).raise_for_status()
        ours, ref, errors = [], [], 0
        for i in range(N):
            t = time.perf_counter()
            direct.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": f"hello {i}"}]
            )
            ref.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            response = http.post(url, json={"input": f"hello {i}"})
            ours.append((time.perf_counter() - t) * 1000)
            if response.status_code != 200 or response.json().get("output") != f"Echo: hello {i}":
                errors += 1
        a, b = summary(ours), summary(ref)
        print_table(
            f"Run overhead ({N} sequential runs, fake LLM at 0 ms)",
            [("POST /api/v1/agents/{id}/run", a), ("direct openai call", b)],
        )
        print(
            f"\ndifference p50 {a['p50'] - b['p50']:.2f} ms (target <= 10), "
            f"p95 {a['p95'] - b['p95']:.2f} ms (target <= 25); errors {errors}/{N}"
        )


if __name__ == "__main__":
    main()
