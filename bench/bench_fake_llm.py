"""Reference latency of direct calls to the fake LLM server.

Other benchmarks compare the platform's overhead against these numbers.

    python -m bench.bench_fake_llm                 # in-process server, 200 calls
    python -m bench.bench_fake_llm -n 500 --json   # also print machine-readable JSON
    python -m bench.bench_fake_llm --process       # server in a child process (no GIL sharing)
    python -m bench.bench_fake_llm --base-url http://127.0.0.1:8765/v1   # external server

The headline row is "chat non-stream": sequential, non-streaming chat
completions through the ``openai`` client at 0 ms token latency. Stream and
embeddings rows are printed as additional references.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from typing import Any

import openai

from bench.fake_llm import FakeLLMProcess, FakeLLMServer
from bench.stack import timings

MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Summarise the quarterly report in one short sentence please."},
]


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank-with-interpolation percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def measure(fn: Callable[[], Any], n: int, warmup: int) -> dict[str, float]:
    samples = sorted(timings(fn, n, warmup))
    return {
        "n": n,
        "p50_ms": percentile(samples, 50),
        "p95_ms": percentile(samples, 95),
        "p99_ms": percentile(samples, 99),
        "mean_ms": statistics.fmean(samples),
        "min_ms": samples[0],
        "max_ms": samples[-1],
        "rps": 1000.0 * n / sum(samples),
    }


def run(base_url: str, n: int, warmup: int, extra: bool) -> dict[str, dict[str, float]]:
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)

    def chat() -> None:
        r = client.chat.completions.create(model="fake-gpt", messages=MESSAGES)
        assert r.choices[0].message.content

    results = {"chat non-stream": measure(chat, n, warmup)}
    if extra:

        def chat_stream() -> None:
            stream = client.chat.completions.create(
                model="fake-gpt", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            for _ in stream:
                pass

        def embed() -> None:
            client.embeddings.create(model="fake-embed", input="the quick brown fox", encoding_format="float")

        results["chat stream (full)"] = measure(chat_stream, n, warmup)
        results["embeddings (1 input)"] = measure(embed, n, warmup)
    client.close()
    return results


def print_table(results: dict[str, dict[str, float]], where: str) -> None:
    cols = ("n", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "max_ms", "rps")
    print(f"Fake LLM reference latency ({where}, sequential, openai client, 0 ms token latency)")
    header = f"{'benchmark':<22}" + "".join(f"{c:>10}" for c in cols)
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        cells = "".join(f"{int(r[c]):>10d}" if c == "n" else f"{r[c]:>10.2f}" for c in cols)
        print(f"{name:<22}{cells}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_fake_llm", description=__doc__.split("\n")[1])
    p.add_argument("-n", type=int, default=200, help="measured calls per benchmark (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured warm-up calls (default 20)")
    p.add_argument(
        "--base-url", default=None, help="use an already running server instead of an in-process one"
    )
    p.add_argument(
        "--process", action="store_true", help="run the server in a child process instead of a thread"
    )
    p.add_argument("--only-chat", action="store_true", help="only the non-stream chat benchmark")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)

    if args.base_url:
        results = run(args.base_url, args.n, args.warmup, not args.only_chat)
        where = args.base_url
    elif args.process:
        with FakeLLMProcess(token_latency_ms=0) as proc:
            results = run(proc.base_url, args.n, args.warmup, not args.only_chat)
            where = "server in child process"
    else:
        with FakeLLMServer(token_latency_ms=0) as srv:
            results = run(srv.base_url, args.n, args.warmup, not args.only_chat)
            where = "server in background thread"
    print_table(results, where)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
