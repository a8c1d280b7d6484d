"""Workflow engine: simple executions per second through the signed webhook, and per-node dispatch latency.

1. Executions/s: a published workflow `webhook trigger -> transform -> end`. CLIENTS concurrent clients
   send RUNS signed `POST /hooks/workflows/<token>` (after a warm-up), then we wait until every run is
   finished. Executions/s = RUNS / (first request -> last run's completed_at). Path: daphne -> signature
   check -> run + trigger step rows -> Celery (Redis) -> worker claims the trigger, then the transform
   and end inline -> run succeeded. Reference in the same run: the same clients sending the same number
   of `GET /readyz` (a plain Django view that asks PostgreSQL and Redis), so the figure can be quoted
   as a ratio on this noisy machine. Target: >= 250 executions/s, 0 errors.
2. Dispatch latency: from one step's finished_at to the next step's started_at (StepRun rows), for a
   chain of nodes the engine queues through Celery (delay 0 s, and agents on the fake LLM at 0 ms), and
   for a chain of inline nodes (transforms, run in the same task). Runs go one at a time, so this is the
   engine's own latency, not queueing. Target: p50 <= 5 ms for the queued hops.

Run: python -m bench.bench_workflows   (BENCH_WF_RUNS, BENCH_WF_CLIENTS, BENCH_WF_WORKERS,
BENCH_WF_CONCURRENCY, BENCH_WF_CHAINS tune it; worker logs go to /tmp/agentos-bench)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("AGNO_TELEMETRY", "false")
# The webhook secret is kept encrypted; the bench stack runs with DEBUG off, so it needs a key ring:
# a fresh key for this process and the servers it starts (bench/stack.py passes it on).
if "FERNET_KEYS" not in os.environ:
    from cryptography.fernet import Fernet

    os.environ["FERNET_KEYS"] = os.environ["AGENTOS_BENCH_FERNET_KEY"] = Fernet.generate_key().decode()
RUNS = int(os.environ.get("BENCH_WF_RUNS", "2000"))
WARMUP = int(os.environ.get("BENCH_WF_WARMUP", "100"))
CLIENTS = int(os.environ.get("BENCH_WF_CLIENTS", "32"))
WORKERS = int(os.environ.get("BENCH_WF_WORKERS", "1"))  # Celery worker processes (stack starts the first)
CONCURRENCY = int(os.environ.get("BENCH_WF_CONCURRENCY", "8"))  # threads per worker process
CHAINS = int(os.environ.get("BENCH_WF_CHAINS", "30"))  # sequential runs per dispatch-latency chain
CHAIN_LENGTH = 6
FINISH_TIMEOUT = 120.0


# ---------------------------------------------------------------------- workflows


def _node(nid: str, type_: str, **config: Any) -> dict[str, Any]:
    return {"id": nid, "type": type_, "name": nid, "config": config, "position": {"x": 0, "y": 0}}


def _chain_graph(trigger_kind: str, middle: list[dict[str, Any]]) -> dict[str, Any]:
    nodes = [
        _node("start", "trigger", kind=trigger_kind),
        *middle,
        _node("finish", "end", output="{{ last }}"),
    ]
    ids = [n["id"] for n in nodes]
    return {
        "nodes": nodes,
        "edges": [{"source": a, "target": b, "port": "out"} for a, b in zip(ids, ids[1:], strict=False)],
    }


def _publish(org: Any, user: Any, name: str, graph: dict[str, Any]) -> Any:
    from workflows import services

    workflow = services.workflow_create(org=org, by=user, name=f"{name} {time.time_ns()}", graph=graph)
    services.workflow_publish(workflow=workflow, by=user)
    workflow.refresh_from_db()
    return workflow


# -------------------------------------------------------------------- load helpers


async def _load(
    method: str, url: str, count: int, body_of: Any = None, secret: str = "", expect: int = 200
) -> tuple[list[float], list[int], int, float, float]:
    """`count` requests over CLIENTS connections. Returns latencies (ms), run ids, errors, start, end (epoch s)."""
    import aiohttp

    latencies: list[float] = []
    run_ids: list[int] = []
    errors = 0
    issued = 0
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def client() -> None:
            nonlocal issued, errors
            while issued < count:
                i = issued
                issued += 1
                headers = {}
                data = b""
                if body_of is not None:
                    data = json.dumps(body_of(i)).encode()
                    signature = hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
                    headers = {
                        "Content-Type": "application/json",
                        "X-AgentOS-Signature": f"sha256={signature}",
                    }
                t = time.perf_counter()
                try:
                    async with http.request(method, url, data=data or None, headers=headers) as response:
                        payload = await response.json(content_type=None)
                        ok = response.status == expect
                except Exception:
                    ok, payload = False, None
                latencies.append((time.perf_counter() - t) * 1000)
                if ok and isinstance(payload, dict) and "run_id" in payload:
                    run_ids.append(int(payload["run_id"]))
                elif not ok:
                    errors += 1

        start = time.time()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        end = time.time()
    return latencies, run_ids, errors, start, end


def _wait_finished(run_ids: list[int], timeout: float = FINISH_TIMEOUT) -> dict[str, int]:
    from workflows.models import WorkflowRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = WorkflowRun.objects.filter(pk__in=run_ids, status__in=WorkflowRun.ACTIVE).count()
        if not left:
            break
        time.sleep(0.1)
    counts: dict[str, int] = {}
    for status in WorkflowRun.objects.filter(pk__in=run_ids).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


# --------------------------------------------------------------------- 1. throughput


def bench_executions(base: str, org: Any, user: Any) -> None:
    from django.db.models import Max

    from bench.stack import summary
    from workflows import services
    from workflows.models import WorkflowRun

    workflow = _publish(
        org,
        user,
        "Bench webhook",
        _chain_graph(
            "webhook",
            [
                _node(
                    "shape", "transform", mapping={"order": "{{ input.n }}", "who": "{{ upper(input.name) }}"}
                )
            ],
        ),
    )
    secret = services.webhook_secret(workflow) or ""
    url = f"{base}/hooks/workflows/{workflow.webhook_token}"

    def body(i: int) -> dict[str, Any]:
        return {"n": i, "name": f"customer {i}"}

    _, warm_ids, warm_errors, _, _ = asyncio.run(_load("POST", url, WARMUP, body, secret, expect=202))
    _wait_finished(warm_ids)
    asyncio.run(_load("GET", f"{base}/readyz", WARMUP))

    ref_lat, _, ref_errors, ref_start, ref_end = asyncio.run(_load("GET", f"{base}/readyz", RUNS))
    lat, run_ids, errors, start, end = asyncio.run(_load("POST", url, RUNS, body, secret, expect=202))
    counts = _wait_finished(run_ids)
    runs = WorkflowRun.objects.filter(pk__in=run_ids)
    last_done = runs.aggregate(last=Max("completed_at"))["last"]
    wall = (last_done - datetime.fromtimestamp(start, tz=UTC)).total_seconds() if last_done else float("nan")
    succeeded = counts.get(WorkflowRun.Status.SUCCEEDED, 0)
    wrong = sum(
        1 for out in runs.values_list("output", flat=True) if not isinstance(out, dict) or "order" not in out
    )
    run_ms = [
        (done - created).total_seconds() * 1000
        for created, done in runs.exclude(completed_at=None).values_list("created_at", "completed_at")
    ]
    s, r, rl = summary(lat), summary(ref_lat), summary(run_ms)
    executions = succeeded / wall if wall == wall and wall > 0 else 0.0
    accepted = len(lat) / (end - start)
    reference = len(ref_lat) / (ref_end - ref_start)
    total_errors = errors + ref_errors + warm_errors + (len(run_ids) - succeeded) + wrong
    print(
        f"\nSimple executions: webhook -> transform -> end, {RUNS} runs after {WARMUP} warm-up, {CLIENTS} clients, "
        f"{WORKERS} worker process(es) x {CONCURRENCY} threads, daphne, on {os.cpu_count()} CPUs"
    )
    print(f"{'measure':<44}{'per s':>10}{'p50 ms':>10}{'p95 ms':>10}{'errors':>8}")
    print(
        f"{'reference: GET /readyz (DB + Redis)':<44}{reference:>10.1f}{r['p50']:>10.1f}{r['p95']:>10.1f}{ref_errors:>8}"
    )
    print(
        f"{'POST /hooks/workflows/<token> (202)':<44}{accepted:>10.1f}{s['p50']:>10.1f}{s['p95']:>10.1f}{errors:>8}"
    )
    print(
        f"{'runs completed (first request -> last done)':<44}{executions:>10.1f}{rl['p50']:>10.1f}{rl['p95']:>10.1f}"
        f"{len(run_ids) - succeeded + wrong:>8}"
    )
    print(f"run statuses: {counts}; run latency = created_at -> completed_at")
    print(
        f"\n{executions:.1f} executions/s = {executions / reference:.0%} of the /readyz request rate "
        f"(target >= 250/s); errors {total_errors} (target 0)"
    )


# ---------------------------------------------------------------- 2. dispatch latency


def _gaps(run_ids: list[int]) -> list[float]:
    """finished_at of a step -> started_at of the step it led to, within each run."""
    from workflows.models import StepRun

    gaps: list[float] = []
    steps = StepRun.objects.filter(run_id__in=run_ids).values_list(
        "run_id", "node_id", "from_node", "iteration", "started_at", "finished_at"
    )
    by_key = {(run, node, it): (started, finished) for run, node, _, it, started, finished in steps}
    for run, _node_id, from_node, it, started, _ in steps:
        prev = by_key.get((run, from_node, it)) if from_node else None
        if prev and prev[1] and started:
            gaps.append((started - prev[1]).total_seconds() * 1000)
    return gaps


def _sequential_runs(workflow: Any, user: Any, count: int) -> list[int]:
    from workflows import services
    from workflows.models import WorkflowRun

    ids = []
    for i in range(count):
        run = services.run_start(
            workflow=workflow, by=user, input={"text": f"hello {i}"}, source=WorkflowRun.Source.API
        )
        deadline = time.monotonic() + 30
        while not WorkflowRun.objects.filter(pk=run.pk, status__in=WorkflowRun.FINISHED).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"run {run.pk} did not finish")
            time.sleep(0.005)
        ids.append(run.pk)
    return ids


def bench_dispatch(org: Any, user: Any, agent_id: int) -> None:
    from bench.stack import print_table, summary
    from workflows.graph import NODE_TYPES
    from workflows.models import WorkflowRun

    assert (
        not NODE_TYPES["delay"].inline and not NODE_TYPES["agent"].inline and NODE_TYPES["transform"].inline
    )
    chains = {
        f"queued: {CHAIN_LENGTH} x delay(0 s)": [
            _node(f"d{i}", "delay", seconds=0) for i in range(CHAIN_LENGTH)
        ],
        f"queued: {CHAIN_LENGTH} x agent (fake LLM, 0 ms)": [
            _node(f"a{i}", "agent", agent_id=agent_id, input="{{ input.text }}") for i in range(CHAIN_LENGTH)
        ],
        f"inline: {CHAIN_LENGTH} x transform": [
            _node(f"t{i}", "transform", mapping={"i": i, "text": "{{ input.text }}"})
            for i in range(CHAIN_LENGTH)
        ],
    }
    rows = []
    failures = 0
    for label, middle in chains.items():
        workflow = _publish(org, user, "Bench chain", _chain_graph("api", middle))
        _sequential_runs(workflow, user, 3)  # warm: graph cache, connections, agent build
        ids = _sequential_runs(workflow, user, CHAINS)
        failures += (
            WorkflowRun.objects.filter(pk__in=ids).exclude(status=WorkflowRun.Status.SUCCEEDED).count()
        )
        rows.append((label, summary(_gaps(ids))))
    print_table(
        f"Per-node dispatch latency: step finished_at -> next step started_at ({CHAINS} sequential runs per chain)",
        rows,
    )
    queued = rows[0][1]
    print(
        f"\nqueued hop p50 {queued['p50']:.2f} ms, p95 {queued['p95']:.2f} ms (target p50 <= 5 ms); failed runs {failures}"
    )


# ----------------------------------------------------------------------------- main


def _extra_workers(count: int, base_url_llm: str) -> list[subprocess.Popen[bytes]]:
    from bench.stack import BIN, ROOT, base_env

    env = base_env()
    env.update({"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base_url_llm})
    log_dir = Path(os.environ.get("BENCH_LOG_DIR", "/tmp/agentos-bench"))  # nosec B108 - logs stay out of the repo
    procs = []
    for n in range(count):
        procs.append(
            subprocess.Popen(  # noqa: S603
                [
                    str(BIN / "celery"),
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    "runs,default",
                    "-n",
                    f"wfbench{n}@%h",
                    "--pool",
                    "threads",
                    "--concurrency",
                    str(CONCURRENCY),
                    "--prefetch-multiplier",
                    "1",
                    "--loglevel",
                    "WARNING",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                stdout=open(log_dir / f"worker-wf{n}.log", "wb"),  # noqa: SIM115 - the child owns it
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def main() -> None:
    from bench.stack import stack

    with stack(worker_concurrency=CONCURRENCY) as (base, seeded, llm):
        from accounts.models import Organization, User

        extra = _extra_workers(WORKERS - 1, llm.base_url) if WORKERS > 1 else []
        try:
            if extra:
                time.sleep(2.0)  # let them connect to the broker
            org = Organization.objects.get(pk=seeded.org_id)
            user = User.objects.get(pk=seeded.user_id)
            bench_executions(base, org, user)
            bench_dispatch(org, user, seeded.agent_id)
        finally:
            for proc in extra:
                proc.terminate()
            for proc in extra:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
