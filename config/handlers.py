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
  middleware in the chain adds an `async_to_sync` back. Here the middleware chain is loaded in
  sync mode and the whole of it, view included, runs in one hop, as under WSGI. An async view
  (the run endpoint that waits for its answer) is still awaited: Django runs it on the event
  loop through `async_to_sync` from the request's thread.

Streaming responses, disconnect handling and the request signals are Django's, unchanged.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.http import HttpRequest, HttpResponseBase

KEEP_IDLE = 64  # idle request threads kept for the next requests; more are let go


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

    def __init__(self, keep: int = KEEP_IDLE) -> None:
        self.keep = keep
        self.free: list[RequestThread] = []
        self.started = 0

    def take(self) -> RequestThread:
        if self.free:
            return self.free.pop()
        self.started += 1
        return RequestThread()

    def give(self, thread: RequestThread) -> None:
        if thread.idle and len(self.free) < self.keep:
            self.free.append(thread)
        else:
            thread.shutdown(wait=False)  # its thread ends once its work is done


class ASGIHandler(DjangoASGIHandler):
    def __init__(self) -> None:
        super(DjangoASGIHandler, self).__init__()  # BaseHandler: skip the async-mode middleware load
        self.load_middleware(is_async=False)
        self.threads = RequestThreads()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = self.threads.take()
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give(thread)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        # The sync chain (middleware, view, response middleware) in one hop to the request thread.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
