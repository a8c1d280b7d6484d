"""Mutable server state (runtime knobs and counters) shared by the handlers."""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .common import DEFAULT_EMBEDDING_DIM


@dataclass
class FakeLLMState:
    """Mutable configuration + counters shared by the handlers."""

    token_latency_ms: float = 0.0
    first_token_ms: float = 0.0
    embedding_dim: int = DEFAULT_EMBEDDING_DIM
    error_retry_after_ms: float | None = 1.0
    record_requests: int = 200
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    streams: int = 0
    errors: int = 0
    peers: set[Any] = field(default_factory=set)  # client (host, port) pairs: one per TCP connection
    requests: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)
    _error_attempts: dict[tuple[str, int], int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.requests = collections.deque(maxlen=max(0, self.record_requests) or None)

    def count(self, key: str) -> None:
        self.total += 1
        c = self.counts
        c[key] = c.get(key, 0) + 1

    def connection(self, request: web.Request) -> None:
        if request.transport is not None:
            self.peers.add(request.transport.get_extra_info("peername"))

    def record(self, request: web.Request, key: str, body: Any) -> None:
        if self.record_requests > 0:
            self.requests.append({"endpoint": key, "headers": dict(request.headers), "body": body})

    def stats(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "endpoints": dict(self.counts),
            "streams": self.streams,
            "errors": self.errors,
            "connections": len(self.peers),
        }

    def reset(self) -> None:
        self.counts.clear()
        self.total = self.streams = self.errors = 0
        self.requests.clear()
        self.peers.clear()
        self._error_attempts.clear()


STATE_KEY = web.AppKey("fake_llm_state", FakeLLMState)

# Runtime knobs readable/settable over ``/_config`` (and as server attributes).
CONFIG_FIELDS = ("token_latency_ms", "first_token_ms", "embedding_dim", "error_retry_after_ms")
