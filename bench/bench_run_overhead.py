"""Run overhead: POST /api/v1/agents/{id}/run (no stream, fake LLM at 0 ms) against a direct openai call
to the same fake server, measured in the same process run.

Our path: HTTP -> daphne -> auth + run row + message -> Celery (Redis) -> worker -> agno -> fake LLM ->
events + final message -> done signal -> response. Targets: difference <= 10 ms p50, <= 25 ms p95.

Then, from the same runs' rows (created, started and finished times, and the client's clock), where the
time goes; and the fixed costs of the parts every run must pass through, measured in the same process
run: an authenticated API request through daphne (GET /api/v1/models/providers), agno's own cost over
the direct call (a bare agno Agent asking the fake server for the whole answer, in this process, as a
run without stream does), and a durable
commit (a transaction that writes, flushed to disk). A run passes the first two once and commits twice.
Run: python -m bench.bench_run_overhead
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

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
        sent: dict[int, tuple[float, float]] = {}  # run id -> client's send and receive times (epoch s)
        for i in range(N):
            t = time.perf_counter()
            direct.chat.completions.create(
                model="fake-gpt", messages=[{"role": "user", "content": f"hello {i}"}]
            )
            ref.append((time.perf_counter() - t) * 1000)
            t, epoch = time.perf_counter(), time.time()
            response = http.post(url, json={"input": f"hello {i}"})
            ours.append((time.perf_counter() - t) * 1000)
            if response.status_code != 200 or response.json().get("output") != f"Echo: hello {i}":
                errors += 1
            else:
                sent[response.json()["run_id"]] = (epoch, epoch + ours[-1] / 1000)
        a, b = summary(ours), summary(ref)
        print_table(
            f"Run overhead ({N} sequential runs, fake LLM at 0 ms)",
            [("POST /api/v1/agents/{id}/run", a), ("direct openai call", b)],
        )
        print(
            f"\ndifference p50 {a['p50'] - b['p50']:.2f} ms (target <= 10), "
            f"p95 {a['p95'] - b['p95']:.2f} ms (target <= 25); errors {errors}/{N}"
        )
        print_table(
            "Where a run's time goes (its phases, from the runs' rows and the client's clock)", _phases(sent)
        )
        print(
            "web: HTTP, auth, checks, the rows built | row -> claimed: the commit, Celery's hop, the claim | "
            "worker: the agent, agno and the model | answer -> client: the final transaction, the done "
            "signal, the web's answer"
        )
        fixed = [
            (
                "API request through daphne",
                _timed(lambda: http.get("/api/v1/models/providers").raise_for_status()),
            ),
            ("agno run (bare agent, whole answer)", _timed(_bare_agno(llm.base_url))),
            (
                "direct openai call (again)",
                _timed(
                    lambda: direct.chat.completions.create(
                        model="fake-gpt", messages=[{"role": "user", "content": "again"}]
                    )
                ),
            ),
            ("durable commit", _timed(_durable_commit)),
        ]
        print_table("Fixed costs of the parts a run passes through (same process run)", fixed)
        request, agno_run, again, commit = (row[1]["p50"] for row in fixed)
        floor = request + (agno_run - again) + 2 * commit
        print(
            f"\nrequest {request:.2f} + agno over the direct call {agno_run - again:.2f} + 2 commits "
            f"{2 * commit:.2f} = {floor:.2f} ms of the p50 difference {a['p50'] - b['p50']:.2f} ms, before "
            "Celery's hop, the run's own rows and the answer's way back"
        )


def _timed(call: Callable[[], object], n: int = N) -> dict[str, float]:
    from bench.stack import summary, timings

    return summary(timings(call, n, warmup=10))


def _bare_agno(base_url: str) -> Callable[[], object]:
    """The least agno does for a run without stream: an agent with the same instructions, asking for
    the whole answer."""
    from agno.agent import Agent
    from agno.models.openai import OpenAIChat

    agent = Agent(
        model=OpenAIChat(id="fake-gpt", base_url=base_url, api_key="x"),
        instructions="Be brief.",
        telemetry=False,
    )

    def run() -> object:
        return agent.run("hello")

    return run


def _durable_commit() -> None:
    """A transaction that writes (it takes a transaction id), so its COMMIT waits for the WAL flush."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT txid_current()")


def _phases(sent: dict[int, tuple[float, float]]) -> list[tuple[str, dict[str, float]]]:
    from agents.models import AgentRun
    from bench.stack import summary

    phases: dict[str, list[float]] = {
        "request -> run row built (web)": [],
        "row -> claimed by a worker": [],
        "claimed -> answer ready (worker)": [],
        "answer ready -> client has it": [],
    }
    rows = AgentRun.objects.filter(pk__in=list(sent)).values_list(
        "pk", "created_at", "started_at", "finished_at"
    )
    for pk, created, started, finished in rows:
        if started is None or finished is None:
            continue
        send, received = sent[pk]
        points = [send, created.timestamp(), started.timestamp(), finished.timestamp(), received]
        for name, (x, y) in zip(phases, zip(points, points[1:], strict=False), strict=True):
            phases[name].append((y - x) * 1000)
    return [(name, summary(values)) for name, values in phases.items() if values]


if __name__ == "__main__":
    main()
