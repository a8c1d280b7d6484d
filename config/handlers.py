"""Django's ASGI handler, with one thread hop per request and request threads that are reused.

Django's own handler cost this project most of daphne's CPU on small requests (profiled with
py-spy on `/readyz`, about 7 ms of CPU a request on the 2-CPU machine):

- **A new thread per request.** Each request runs in a `ThreadSensitiveContext`, which creates a
  one-thread executor for the request's sync code and joins it afterwards (another thread).
  Here a finished request's executor goes back to a free list and serves the next request, the
  way a threaded WSGI server keeps its threads. An executor whose thread is still busy (the
  client went away while a view ran) is not reused.
- **Hops between the event loop and the thread, several per request.** Async-mode middleware
  runs each sync `process_request`/`process_response` through `sync_to_async`, and a sync-only
  middleware in the chain adds an `async_to_sync` back; the `request_started` signal and the
  response's `close()` (`request_finished`) each take a hop of their own. Here the middleware
  chain is loaded in sync mode, and the signal, the chain with its view and, for a complete
  response, its close, run in one hop, as under WSGI.
- **Too many threads running at once.** At most `ASGI_BUSY_THREADS` requests run their sync code
  at a time (`Gate`), so the event loop is not starved of the GIL.
- **A thread held while a view waits.** A view whose answer is a wait that needs no thread (the
  run endpoint waiting for its run) returns a `DeferredResponse`: the chain finishes in the
  thread as for any response, the thread goes back to the free list for the next request, and
  the wait is awaited on the event loop.

Streaming responses and disconnect handling are Django's, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any, cast

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.core.handlers.asgi import get_script_prefix
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import set_script_prefix

KEEP_IDLE = 64  # idle request threads kept for the next requests; more are let go
SLOW_SECONDS = 0.5  # a request's sync code running longer than this no longer counts against the gate


class DeferredResponse(HttpResponse):
    """A response finished on the event loop. The view did its work in the request thread, and the
    middleware chain ran on this response as on any other; what is left, `finish()`, is a wait that
    needs no thread. The handler sends what `finish()` returns, with the headers and cookies the
    middleware set here. A view returns one only when `may_defer(request)`: under WSGI or Django's
    test client it waits in its own thread instead. The request's thread serves other requests while
    `finish()` runs, so sync work there takes any thread (`sync_to_async(..., thread_sensitive=False)`)."""

    def __init__(self, finish: Callable[[], Awaitable[HttpResponse]]) -> None:
        super().__init__(status=202)
        self.finish = finish

    def adopt(self, final: HttpResponse) -> HttpResponse:
        for header, value in self.items():
            if header.lower() not in ("content-type", "content-length") and header not in final:
                final[header] = value
        for name, morsel in self.cookies.items():
            final.cookies[name] = morsel
        return final


def may_defer(request: Any) -> bool:
    """Whether the server will finish a `DeferredResponse` (this handler), for a Django or DRF request."""
    return bool(getattr(getattr(request, "_request", request), "deferrable", False))


class RequestThread(ThreadPoolExecutor):
    """One thread that runs one request's sync code at a time, and can serve many requests."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="request")
        self._last: Future[Any] | None = None

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self._last = future = super().submit(fn, *args, **kwargs)
        return future

    @property
    def idle(self) -> bool:
        # One worker runs calls in order: when the last one is done, they all are.
        return self._last is None or self._last.done()


class RequestThreads:
    """The free list. Used only from the event loop's thread, so it needs no lock."""

    make = RequestThread

    def __init__(self, keep: int = KEEP_IDLE) -> None:
        self.keep = keep
        self.free: list[RequestThread] = []
        self.started = 0

    def take(self) -> RequestThread:
        if self.free:
            return self.free.pop()
        self.started += 1
        return self.make()

    def give(self, thread: RequestThread) -> None:
        if thread.idle and len(self.free) < self.keep:
            self.free.append(thread)
        else:
            thread.shutdown(wait=False)  # its thread ends once its work is done


class Gate:
    """How many requests run their sync code at once; the others wait their turn on the event loop.

    Every request thread that runs Python competes for the GIL with the event loop, which every
    request passes through twice. With a thread for each of 200 concurrent requests, the loop got
    the GIL so rarely that a 20 ms timer fired 0.4 to 1.8 s late, and answers that were ready waited
    that long to be sent. A few at a time keep the loop on time and the CPU as busy. A turn that takes
    longer than `slow` seconds (a view waiting on another service) stops counting, so slow views
    cannot hold up the rest."""

    def __init__(self, size: int, slow: float = SLOW_SECONDS) -> None:
        self.size = size
        self.slow = slow
        self.free = asyncio.Semaphore(size) if size > 0 else None

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        free = self.free
        if free is None:
            yield
            return
        await free.acquire()
        held = True

        def let_go() -> None:
            nonlocal held
            if held:
                held = False
                free.release()

        timer = asyncio.get_running_loop().call_later(self.slow, let_go)
        try:
            yield
        finally:
            timer.cancel()
            let_go()


class ASGIHandler(DjangoASGIHandler):
    def __init__(self) -> None:
        super(DjangoASGIHandler, self).__init__()  # BaseHandler: skip the async-mode middleware load
        self.load_middleware(is_async=False)
        self.threads = RequestThreads()
        self.gate = Gate(settings.ASGI_BUSY_THREADS)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    @asynccontextmanager
    async def request_thread(self) -> AsyncIterator[Callable[[], None]]:
        """A thread from the free list, as the request's thread-sensitive context. Yields `let_go`, which
        hands the thread back before the block ends, once the request gives it no more work."""
        thread = self.threads.take()
        given = False

        def let_go() -> None:
            nonlocal given
            if not given:
                given = True
                self.threads.give(thread)

        try:
            async with ThreadSensitiveContext(executor=thread):
                yield let_go
        finally:
            let_go()

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's, in one hop. A request takes its thread when its turn at the gate comes, not while it
        waits for it, and gives it back once its sync code is done (a streaming response keeps it for its
        iterator): threads serve the requests running sync code, not the ones waiting (200 waiting
        clients held 200 threads, and beyond the free list each one started a thread, which took a
        quarter of the event loop's time)."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            set_script_prefix(get_script_prefix(scope))
            request, error_response = self.create_request(scope, body_file)
            if request is None:  # Django's contract: then there is an error response
                refused = cast(HttpResponseBase, error_response)
                await self.send_response(refused, send)
                async with self.request_thread():
                    await sync_to_async(refused.close)()
                return
            request.deferrable = True  # type: ignore[attr-defined]
            async with AsyncExitStack() as held:
                async with self.gate.turn():
                    let_go = await held.enter_async_context(self.request_thread())
                    response = await sync_to_async(self.respond, thread_sensitive=True)(request, scope)
                if response.streaming:  # a sync iterator is read in the request's thread
                    await self.finish_watching(response, receive, send)
                    return
                let_go()  # what is left needs no thread: a complete body to send, or a deferred wait
                if isinstance(response, DeferredResponse):
                    await self.finish_watching(response, receive, send)
                else:
                    await self.send_response(response, send)
        finally:
            body_file.close()

    def respond(self, request: HttpRequest, scope: dict[str, Any]) -> HttpResponseBase:
        """The request's sync work, in its thread: `request_started`, the middleware chain and view,
        and, once the body is complete (a deferred response's wait needs no connection), `close()`."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        response = self.get_response(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # Django's API (`run_get_response`): the chain is loaded sync, so Django's own version would fail.
        # `handle` above does this work in `respond`.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def finish_watching(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        """A response with work left on the loop: it races the client's disconnect, as in Django."""
        final = response

        async def process() -> None:
            nonlocal final
            if isinstance(response, DeferredResponse):
                final = response.adopt(await response.finish())
            with suppress(asyncio.CancelledError):  # the client went away while we sent
                await self.send_response(final, send)

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                with suppress(RequestAborted):
                    task.result()
            else:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if final.streaming:
            await sync_to_async(final.close)()  # request_finished, after the stream
