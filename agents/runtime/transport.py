"""The transport model clients use, so a streamed answer leaves its connection in the pool.

The openai client stops reading a stream at `data: [DONE]` and closes the response before the
transport has seen the body end, so the HTTP client drops the connection: every streamed call then
opened a new TCP (and TLS) connection. `KeepAliveAfterDone` drains the little left after `[DONE]`
instead. A stream closed before `[DONE]` (a cancelled run) still closes its connection, which is what
stops the provider.

It wraps a transport of either HTTP library: httpx2, the openai client's own (used for the platform's
trusted base URLs: no conversion layer between the two on every call), or httpx (the outbound-address
guard for organization-supplied base URLs is built on it).

`abortable` gives a transport's connections an owner: the thread that last read or wrote on one. A run
that asks its model for the whole answer at once (no stream to stop between chunks) is cancelled by
shutting the socket its thread is reading (`abort_reads_of`): the blocked read ends at once, with an
error the run reports as cancelled.
"""

from __future__ import annotations

import contextlib
import socket
import threading
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


# ------------------------------------------------------------- abortable reads

# The connection each thread used last, by thread id; a connection records the thread using it now.
_last_used: dict[int, _Owned] = {}


class _Owned:
    """A network stream of either HTTP core library that records which thread uses it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.owner = 0

    def _mine(self) -> None:
        self.owner = ident = threading.get_ident()
        _last_used[ident] = self

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._mine()
        return self.inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._mine()
        self.inner.write(buffer, timeout)

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> _Owned:
        return _Owned(self.inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)

    def abort(self, thread: int) -> bool:
        """Shut the socket if `thread` is still the one using it (it may be back in the pool, or
        another thread's by now): its blocked read returns at once."""
        if self.owner != thread:
            return False
        sock = self.inner.get_extra_info("socket")
        if sock is None:
            return False
        with contextlib.suppress(OSError):  # closed already
            # The raw socket's shutdown, also under TLS: SSLSocket.shutdown would drop the TLS
            # state the reading thread is using.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        return True


class _OwningBackend:
    """Wraps a network backend (the plain one, or the address guard's): its streams are `_Owned`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> _Owned:
        return _Owned(self.inner.connect_tcp(*args, **kwargs))

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> _Owned:
        return _Owned(self.inner.connect_unix_socket(*args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def abortable(transport: Any) -> Any:
    """The transport (an httpx or httpx2 HTTPTransport), its connections owned (`abort_reads_of`).
    Neither library has a switch for the pool's network backend; its pool keeps it here."""
    pool = transport._pool
    pool._network_backend = _OwningBackend(pool._network_backend)
    return transport


def abort_reads_of(thread: int) -> bool:
    """Shut the connection `thread` is reading or writing through an `abortable` transport, if any."""
    stream = _last_used.get(thread)
    return stream is not None and stream.abort(thread)


def forget_thread(thread: int) -> None:
    _last_used.pop(thread, None)
