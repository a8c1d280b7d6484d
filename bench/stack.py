"""The full stack for benchmarks: embedded PostgreSQL and Redis, the fake LLM in its own process,
daphne and a Celery run worker as subprocesses, and a seeded organization with an agent and API key.

Benchmarks use a separate database (`bench`) and Redis instance (`.data/redis-bench`), so they never
touch `make run`'s data. Everything listens on loopback and stops when the `Stack` context exits.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def timings(call: Callable[[], object], n: int, warmup: int) -> list[float]:
    """`call` run `warmup` times unmeasured, then `n` times: each one's wall time in ms, in order."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000.0)
    return samples


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def base_env() -> dict[str, str]:
    from config import embedded

    env = dict(os.environ)
    env.update(
        {
            "AGNO_TELEMETRY": "false",
            "EMBEDDED_DB_NAME": "bench",
            "REDIS_URL": embedded.redis_url("redis-bench"),
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "k" * 40,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "THROTTLE_USER": "100000/min",
            "THROTTLE_ANON": "100000/min",
            "DB_CONN_MAX_AGE": "600",
            "PYTHONPATH": str(ROOT),
            "ASGI_THREADS": os.environ.get("ASGI_THREADS", "64"),  # bounds web threads, hence DB connections
        }
    )
    # Encrypted fields need a key with DEBUG off: a fresh one per process tree, never stored.
    env.setdefault("FERNET_KEYS", _bench_fernet_key())
    return env


def _bench_fernet_key() -> str:
    key = os.environ.get("AGENTOS_BENCH_FERNET_KEY")
    if not key:
        from cryptography.fernet import Fernet

        key = os.environ["AGENTOS_BENCH_FERNET_KEY"] = Fernet.generate_key().decode()
    return key


def _wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Seeded:
    org_id: int
    user_id: int
    agent_id: int
    api_key: str


@contextmanager
def stack(
    *,
    token_latency_ms: float = 0,
    first_token_ms: float = 0,
    worker_concurrency: int = 8,
    web: bool = True,
    worker: bool = True,
    workers: int = 1,
):
    """Yields (base_url, seeded, fake_llm). Django in this process is configured for the bench DB."""
    from bench.fake_llm import FakeLLMProcess
    from config import embedded

    env = base_env()
    os.environ.update(
        {
            k: env[k]
            for k in (
                "EMBEDDED_DB_NAME",
                "REDIS_URL",
                "AGNO_TELEMETRY",
                "DEBUG",
                "SECRET_KEY",
                "ALLOWED_HOSTS",
                "LOG_LEVEL",
            )
        }
    )
    os.environ["EMBEDDED_DB_NAME"] = "bench"
    embedded.DB_NAME = "bench"
    embedded.ensure_postgres()
    embedded.ensure_redis("redis-bench")
    llm = FakeLLMProcess(token_latency_ms=token_latency_ms, first_token_ms=first_token_ms)
    llm.start()
    env.update({"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": llm.base_url})
    os.environ.update({"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": llm.base_url})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    import django

    django.setup()
    seeded = _seed()
    procs: list[subprocess.Popen[bytes]] = []
    log_dir = Path(os.environ.get("BENCH_LOG_DIR", "/tmp/agentos-bench"))  # nosec B108 - logs stay out of the repo
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    try:
        for n in range(workers if worker else 0):
            procs.append(
                subprocess.Popen(  # noqa: S603
                    [
                        str(BIN / "celery"),
                        "-A",
                        "config",
                        "worker",
                        "-Q",
                        "runs,default",
                        "--pool",
                        "threads",
                        "--concurrency",
                        str(worker_concurrency),
                        "--prefetch-multiplier",
                        "1",
                        "--loglevel",
                        "WARNING",
                        "--without-mingle",
                        "--without-gossip",
                        "--without-heartbeat",
                        "-n",
                        f"bench{n}@%h",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=open(log_dir / f"worker{n or ''}.log", "wb"),  # noqa: SIM115 - the child owns it
                    stderr=subprocess.STDOUT,
                )
            )  # noqa: SIM115
        if web:
            procs.append(
                subprocess.Popen(  # noqa: S603
                    [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
                    cwd=ROOT,
                    env=env,
                    stdout=open(log_dir / "web.log", "wb"),  # noqa: SIM115 - the child owns it
                    stderr=subprocess.STDOUT,
                )
            )  # noqa: SIM115
            _wait_http(f"http://127.0.0.1:{port}/healthz")
        time.sleep(1.0)  # let the worker connect to the broker
        yield f"http://127.0.0.1:{port}", seeded, llm
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        llm.stop()


def fund(org: Any) -> None:
    """Benchmarks measure the product, not its bill: an unlimited plan and plenty of credits."""
    from billing.ledger import account_for, balance, post
    from billing.models import BillingAccount, Plan

    account_for(org)
    BillingAccount.objects.filter(organization=org).update(plan=Plan.objects.get(slug="enterprise"))
    if balance(org) < 1_000_000:
        post(
            org=org, type="grant", amount=10_000_000, key=f"bench-funds-{time.time_ns()}", description="Bench"
        )


def _seed() -> Seeded:
    from accounts.models import Role, User
    from accounts.services import api_key_create, organization_create
    from agents import services

    user, _ = User.objects.get_or_create(email="bench@example.com")
    org = (
        user.memberships.first().organization
        if user.memberships.exists()
        else organization_create(name="Bench", owner=user)
    )
    fund(org)
    _, raw = api_key_create(org=org, name=f"bench-{time.time_ns()}", by=user, role=Role.ADMIN)
    agent = services.agent_create(
        org=org,
        by=user,
        name=f"Bench agent {time.time_ns()}",
        publish=True,
        config={"instructions": "Be brief.", "model": {"provider": "openai", "name": "fake-gpt"}},
    )
    return Seeded(org_id=org.pk, user_id=user.pk, agent_id=agent.pk, api_key=raw)


def print_table(title: str, rows: list[tuple[str, dict[str, Any]]], unit: str = "ms") -> None:
    print(f"\n{title}")
    print(f"{'measure':<34}{'n':>6}{'p50':>10}{'p95':>10}{'p99':>10}{'mean':>10}   ({unit})")
    for name, s in rows:
        print(f"{name:<34}{s['n']:>6}{s['p50']:>10.2f}{s['p95']:>10.2f}{s['p99']:>10.2f}{s['mean']:>10.2f}")
