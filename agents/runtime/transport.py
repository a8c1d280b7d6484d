"""The transport model clients use, so a streamed answer leaves its connection in the pool.

The openai client stops reading a stream at `data: [DONE]` and closes the response before the
transport has seen the body end, so httpx drops the connection: every streamed call then opened a
new TCP (and TLS) connection. `KeepAliveAfterDone` drains the little left after `[DONE]` instead. A
stream closed before `[DONE]` (a cancelled run) still closes its connection, which is what stops the
provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx


class _DrainAfterDone(httpx.SyncByteStream):
    """A streamed response body that, closed right after the SSE `[DONE]` event, reads the little
    left (the chunked terminator, or nothing) so the connection goes back to the pool."""

    MAX_TAIL = 64 * 1024

    def __init__(self, inner: httpx.SyncByteStream) -> None:
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


class KeepAliveAfterDone(httpx.BaseTransport):
    """Wraps a transport: event streams get a body that drains its tail after `[DONE]`."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.headers.get("content-type", "").startswith("text/event-stream") and isinstance(
            response.stream, httpx.SyncByteStream
        ):
            response.stream = _DrainAfterDone(response.stream)
        return response

    def close(self) -> None:
        self.inner.close()
