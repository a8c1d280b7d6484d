"""config.handlers: Django's ASGI handler with one thread hop per request and reused request threads."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import Future

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.urls import path

from config.handlers import ASGIHandler, DeferredResponse, Gate, RequestThread, RequestThreads, may_defer


@pytest.fixture
def handler():
    h = ASGIHandler()
    yield h
    for thread in h.threads.free:
        thread.shutdown(wait=True)


def _get(handler, url, method="GET", headers=None):
    async def go():
        communicator = HttpCommunicator(
            handler, method, url, headers=[(b"host", b"testserver"), *(headers or [])]
        )
        return await communicator.get_response(timeout=10)

    return async_to_sync(go)()


seen_threads: list[str] = []


def _where(request):
    from django.http import JsonResponse

    seen_threads.append(threading.current_thread().name)
    return JsonResponse({"thread": threading.current_thread().name, "main": threading.main_thread().name})


deferred_seen: dict[str, object] = {}


def _deferred(request):
    from django.http import JsonResponse

    async def finish():
        # On the event loop, with the request's thread free: nothing of the request runs there.
        deferred_seen["thread"] = threading.current_thread().name
        deferred_seen["threads_idle"] = all(t.idle for t in counted)
        await asyncio.sleep(0.01)
        return JsonResponse({"answer": 42})

    deferred_seen["may_defer"] = may_defer(request)
    if not may_defer(request):
        return JsonResponse({"answer": "waited in the thread"})
    response = DeferredResponse(finish)
    response.set_cookie("seen", "yes")
    return response


parked: dict[str, object] = {}


def _parked(request):
    """A deferred response that waits until the test lets it finish."""
    from django.http import JsonResponse

    async def finish():
        parked["waiting"].set()
        await parked["release"].wait()
        return JsonResponse({"answer": "after the wait"})

    return DeferredResponse(finish)


def _blocking(request):
    """A view that holds its thread until the test lets it go."""
    from django.http import JsonResponse

    parked["in_view"].set()
    parked["let_view_go"].wait(5)
    return JsonResponse({"thread": threading.current_thread().name})


urlpatterns = [
    path("where", _where),
    path("deferred", _deferred),
    path("parked", _parked),
    path("blocking", _blocking),
]

counted: list[RequestThread] = []


class CountingThread(RequestThread):
    """Counts what the handler hands to a request's thread (each submit is a hop there and back)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        counted.append(self)

    def submit(self, fn, /, *args, **kwargs):
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


class CountingThreads(RequestThreads):
    make = CountingThread


def test_requests_reuse_one_thread_instead_of_starting_one_each(handler, settings):
    settings.ROOT_URLCONF = __name__
    seen_threads.clear()
    for _ in range(3):
        response = _get(handler, "/where")
        assert response["status"] == 200
    # Sequential requests: one thread was started and served all three (Django starts one per request).
    assert handler.threads.started == 1
    assert len(set(seen_threads)) == 1 and seen_threads[0].startswith("request")
    assert len(handler.threads.free) == 1


def test_the_middleware_chain_is_loaded_sync_and_runs_in_the_request_thread(handler):
    from asgiref.sync import iscoroutinefunction
    from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler

    # Django's own handler loads it in async mode, bouncing to the loop and back per middleware.
    assert iscoroutinefunction(DjangoASGIHandler()._middleware_chain)
    assert not iscoroutinefunction(handler._middleware_chain)
    response = _get(handler, "/healthz")
    assert response["status"] == 200 and json.loads(response["body"]) == {"status": "ok"}
    # Security middleware (sync mode, same chain) still adds its headers.
    headers = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    assert headers.get("x-content-type-options") == "nosniff"


def test_an_async_view_still_answers_through_the_sync_chain(handler):
    # The run endpoint is an async view: without credentials it answers with the API's envelope.
    response = _get(
        handler, "/api/v1/agents/1/run", method="POST", headers=[(b"content-type", b"application/json")]
    )
    body = json.loads(response["body"])
    assert response["status"] == 401 and body["error_code"] == "not_authenticated"


def test_a_thread_still_busy_is_let_go_not_reused():
    threads = RequestThreads(keep=4)
    busy = threads.take()
    gate = threading.Event()
    busy.submit(gate.wait, 5)
    threads.give(busy)
    assert threads.free == []  # a request that left while its view still ran: not handed out again
    gate.set()
    idle = threads.take()
    idle.submit(lambda: None).result(timeout=5)
    threads.give(idle)
    assert threads.free == [idle] and threads.take() is idle
    assert threads.started == 2
    idle.shutdown(wait=True)


def test_only_so_many_idle_threads_are_kept():
    threads = RequestThreads(keep=1)
    first, second = threads.take(), threads.take()
    threads.give(first)
    threads.give(second)
    assert threads.free == [first]
    with pytest.raises(RuntimeError):
        second.submit(lambda: None)  # let go: shut down
    first.shutdown(wait=True)


def test_a_request_thread_knows_when_it_is_idle():
    thread = RequestThread()
    assert thread.idle
    future: Future[None] = thread.submit(lambda: None)
    future.result(timeout=5)
    assert thread.idle
    thread.shutdown(wait=True)


def test_a_request_is_one_hop_to_its_thread_signals_included(handler, settings):
    from django.core.signals import request_finished, request_started

    settings.ROOT_URLCONF = __name__
    counted.clear()
    handler.threads = CountingThreads()
    fired: list[tuple[str, str]] = []

    def started(**kwargs):
        fired.append(("started", threading.current_thread().name))

    def finished(**kwargs):
        fired.append(("finished", threading.current_thread().name))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        response = _get(handler, "/where")
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert response["status"] == 200
    view_thread = json.loads(response["body"])["thread"]
    # Django's handler hands the thread three calls: request_started, the chain, and close().
    assert [t.calls for t in counted] == [1]
    assert fired == [("started", view_thread), ("finished", view_thread)]


def test_a_deferred_response_is_finished_on_the_loop_with_the_middlewares_headers(handler, settings):
    settings.ROOT_URLCONF = __name__
    counted.clear()
    deferred_seen.clear()
    handler.threads = CountingThreads()

    response = _get(handler, "/deferred")

    assert deferred_seen["may_defer"] is True
    assert response["status"] == 200 and json.loads(response["body"]) == {"answer": 42}
    headers = [(k.decode().lower(), v.decode()) for k, v in response["headers"]]
    as_dict = dict(headers)
    assert as_dict["content-type"] == "application/json"
    assert as_dict.get("content-length", str(len(response["body"]))) == str(len(response["body"]))
    assert as_dict["x-content-type-options"] == "nosniff"  # the security middleware's, kept
    assert as_dict["x-frame-options"] == "DENY"
    assert any(k == "set-cookie" and v.startswith("seen=yes") for k, v in headers)
    # The wait ran on the event loop's thread, and held no request thread: one hop, then idle.
    assert not deferred_seen["thread"].startswith("request")
    assert deferred_seen["threads_idle"] is True
    assert [t.calls for t in counted] == [1]


def test_without_our_handler_a_view_does_not_defer(client, settings):
    settings.ROOT_URLCONF = __name__
    deferred_seen.clear()
    response = client.get("/deferred")  # Django's test client: nobody would finish a deferred response
    assert deferred_seen["may_defer"] is False
    assert response.json() == {"answer": "waited in the thread"}


def test_the_gate_lets_so_many_turns_run_at_once():
    async def scenario():
        gate = Gate(1, slow=10)
        order: list[str] = []

        async def turn(name: str, hold: float) -> None:
            async with gate.turn():
                order.append(f"{name} in")
                await asyncio.sleep(hold)
                order.append(f"{name} out")

        await asyncio.gather(turn("a", 0.05), turn("b", 0.0))
        return order

    assert async_to_sync(scenario)() == ["a in", "a out", "b in", "b out"]


def test_a_slow_turn_stops_counting_against_the_gate():
    async def scenario():
        gate = Gate(1, slow=0.05)
        entered: dict[str, float] = {}
        start = time.monotonic()

        async def turn(name: str, hold: float) -> None:
            async with gate.turn():
                entered[name] = time.monotonic() - start
                await asyncio.sleep(hold)

        await asyncio.gather(turn("slow", 1.0), turn("next", 0.0))
        return entered

    entered = async_to_sync(scenario)()
    # The next turn started once the slow one passed `slow`, long before it ended.
    assert 0.04 <= entered["next"] < 0.5


def test_a_gate_of_zero_does_not_limit():
    async def scenario():
        gate = Gate(0)
        inside = 0
        most = 0

        async def turn() -> None:
            nonlocal inside, most
            async with gate.turn():
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.01)
                inside -= 1

        await asyncio.gather(*(turn() for _ in range(5)))
        return most

    assert async_to_sync(scenario)() == 5


def _communicator(handler, url):
    return HttpCommunicator(handler, "GET", url, headers=[(b"host", b"testserver")])


def test_a_deferred_response_gives_its_thread_to_the_next_request_while_it_waits(handler, settings):
    settings.ROOT_URLCONF = __name__

    async def scenario():
        parked["release"], parked["waiting"] = asyncio.Event(), asyncio.Event()
        waiting = asyncio.create_task(_communicator(handler, "/parked").get_response(timeout=10))
        await asyncio.wait_for(parked["waiting"].wait(), 5)  # its view ran; its answer is being waited for
        served = await _communicator(handler, "/where").get_response(timeout=10)
        started_while_parked = handler.threads.started
        parked["release"].set()
        return served, started_while_parked, await waiting

    served, started_while_parked, answered = async_to_sync(scenario)()
    assert served["status"] == 200 and answered["status"] == 200
    assert json.loads(answered["body"]) == {"answer": "after the wait"}
    # The second request ran in the thread of the first, which was still waiting for its answer.
    assert started_while_parked == 1 and handler.threads.started == 1


def test_a_request_waiting_at_the_gate_holds_no_thread(handler, settings):
    settings.ROOT_URLCONF = __name__
    handler.gate = Gate(1, slow=10)

    async def scenario():
        parked["in_view"], parked["let_view_go"] = threading.Event(), threading.Event()
        first = asyncio.create_task(_communicator(handler, "/blocking").get_response(timeout=10))
        await asyncio.to_thread(parked["in_view"].wait, 5)
        second = asyncio.create_task(_communicator(handler, "/where").get_response(timeout=10))
        await asyncio.sleep(0.1)  # the second request reaches the gate and waits there
        started_while_queued = handler.threads.started
        parked["let_view_go"].set()
        return started_while_queued, await first, await second

    started_while_queued, first, second = async_to_sync(scenario)()
    assert first["status"] == 200 and second["status"] == 200
    assert started_while_queued == 1  # only the request at work had a thread
    # The second request took the first one's thread, back on the free list, when its turn came.
    assert json.loads(first["body"])["thread"] == json.loads(second["body"])["thread"]
    assert handler.threads.started == 1
