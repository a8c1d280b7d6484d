"""The transport model clients use, so a streamed answer leaves its connection in the pool.

The openai client stops reading a stream at `data: [DONE]` and closes the response before the
transport has seen the body end, so the HTTP client drops the connection: every streamed call then
opened a new TCP (and TLS) connection. `KeepAliveAfterDone` drains the little left after `[DONE]`
instead. A stream closed before `[DONE]` (a cancelled run) still closes its connection, which is what
stops the provider.

It wraps a transport of either HTTP library: httpx2, the openai client's own (used for the platform's
trusted base URLs: no conversion layer between the two on every call), or httpx (the outbound-address
guard for organization-supplied base URLs is built on it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import httpx2


class _Drain:
    """A streamed response body that, closed right after the SSE `[DONE]` event, reads the little
    left (the chunked terminator, or nothing) so the connection goes back to the pool."""

    MAX_TAIL = 64 * 1024

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.chunks = iter(inner)
        self.done = False
        self.tail = b""

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            window = self.tail + chunk  # "[DONE]" may straddle two chunks
            self.done = self.done or b"data: [DONE]" in window
            self.tail = window[-16:]
            yield chunk

    def close(self) -> None:
        if self.done:
            left = 0
            with contextlib.suppress(Exception):  # a broken tail just means no reuse
                for chunk in self.chunks:
                    left += len(chunk)
                    if left > self.MAX_TAIL:
                        break
        self.inner.close()


# Each library checks that a response body is its own kind of stream.
class _DrainAfterDone(_Drain, httpx.SyncByteStream):
    pass


class _DrainAfterDone2(_Drain, httpx2.SyncByteStream):
    pass


class KeepAliveAfterDone(httpx.BaseTransport, httpx2.BaseTransport):
    """Wraps a transport: event streams get a body that drains its tail after `[DONE]`."""

    def __init__(self, inner: httpx.BaseTransport | httpx2.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: Any) -> Any:
        response = self.inner.handle_request(request)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            if isinstance(response.stream, httpx2.SyncByteStream):
                response.stream = _DrainAfterDone2(response.stream)
            elif isinstance(response.stream, httpx.SyncByteStream):
                response.stream = _DrainAfterDone(response.stream)
        return response

    def close(self) -> None:
        self.inner.close()
