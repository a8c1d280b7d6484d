"""Command line: ``python -m bench.fake_llm --port 8765 --token-latency-ms 0``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .app import make_app, start_site
from .common import DEFAULT_EMBEDDING_DIM, HOST
from .state import FakeLLMState


async def _serve(args: argparse.Namespace) -> None:
    state = FakeLLMState(
        token_latency_ms=args.token_latency_ms,
        first_token_ms=args.first_token_ms,
        embedding_dim=args.embedding_dim,
        record_requests=args.record_requests,
    )
    if args.access_log:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(message)s")
    runner, port = await start_site(make_app(state), args.port, access_log=args.access_log)
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
