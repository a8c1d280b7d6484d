"""Python API: the server in a background thread, or in a child process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from .app import make_app, start_site
from .common import DEFAULT_EMBEDDING_DIM, HOST, JSON_CT, encode, loads
from .state import FakeLLMState

# The repository root (parent of ``bench/``): cwd and PYTHONPATH of the child process.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _ServerHandle:
    """URL and context-manager surface shared by :class:`FakeLLMServer` and :class:`FakeLLMProcess`."""

    port: int | None

    def start(self, timeout: float = 10.0) -> Self:
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Root URL without ``/v1`` (``/_stats`` etc. live here)."""
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return self.url + "/v1"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _state_knob(name: str, convert: Callable[[Any], Any] | None = None) -> Any:
    """A property reading/writing ``self.state.<name>`` (``convert`` applied on write)."""

    def fget(self: FakeLLMServer) -> Any:
        return getattr(self.state, name)

    def fset(self: FakeLLMServer, value: Any) -> None:
        setattr(self.state, name, value if convert is None else convert(value))

    return property(fget, fset)


def _remote_knob(name: str) -> Any:
    """A float property reading/writing the child's ``/_config`` knob ``name``."""

    def fget(self: FakeLLMProcess) -> float:
        return float(self.config()[name])

    def fset(self: FakeLLMProcess, value: float) -> None:
        self.config(**{name: value})

    return property(fget, fset)


class FakeLLMServer(_ServerHandle):
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
    token_latency_ms = _state_knob("token_latency_ms", float)
    first_token_ms = _state_knob("first_token_ms", float)
    embedding_dim = _state_knob("embedding_dim", int)
    error_retry_after_ms = _state_knob("error_retry_after_ms")

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
                runner, port = loop.run_until_complete(start_site(make_app(self.state), self._requested_port))
                self._runner = runner
                self.port = port
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

    def __repr__(self) -> str:
        where = self.base_url if self.port else "stopped"
        return f"<FakeLLMServer {where} token_latency_ms={self.token_latency_ms}>"


class FakeLLMProcess(_ServerHandle):
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
        if self._proc is not None:
            return self
        root = _REPO_ROOT
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

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else encode(payload).encode("utf-8")
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": JSON_CT}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - local URL
            return loads(resp.read())

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

    token_latency_ms = _remote_knob("token_latency_ms")
    first_token_ms = _remote_knob("first_token_ms")
