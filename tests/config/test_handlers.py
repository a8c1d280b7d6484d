"""config.handlers: Django's ASGI handler with one thread hop per request and reused request threads."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.urls import path

from config.handlers import ASGIHandler, RequestThread, RequestThreads


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


urlpatterns = [path("where", _where)]


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
