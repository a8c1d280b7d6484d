"""Cancellation flags in Redis: cheap to check between stream chunks, visible to every worker.

A run that asks its model for the whole answer at once has no chunks to check between, so its thread
is `watching` the flag instead: one thread per process reads the flags of all such runs every
POLL_SECONDS (one round trip for all), and for a raised one shuts the connection the run's thread is
blocked on (`transport.abort_reads_of`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

from django.core.cache import cache

from agents.runtime import transport

logger = logging.getLogger(__name__)

TTL_SECONDS = 3600


def _key(run_id: int) -> str:
    return f"run:{run_id}:cancel"


def request(run_id: int) -> None:
    cache.set(_key(run_id), 1, TTL_SECONDS)


def is_requested(run_id: int) -> bool:
    return bool(cache.get(_key(run_id)))


def clear(run_id: int) -> None:
    cache.delete(_key(run_id))


def stored_key(run_id: int) -> str:
    """The flag's key as stored in Redis (the cache's prefix and version), for a pipeline that
    clears it along with other commands (`events.done_signal`)."""
    return cache.make_key(_key(run_id))


POLL_SECONDS = 0.1

# Threads whose run was cancelled while they waited for the model: agno reports the connection the
# cancel shut as an error, which it is not, so its logger drops what these threads say.
_cancelled_threads: set[int] = set()


class _QuietWhileCancelled(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return threading.get_ident() not in _cancelled_threads


logging.getLogger("agno").addFilter(_QuietWhileCancelled())


class Watch:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.thread = threading.get_ident()
        self.fired = False  # the flag was seen raised: the run was cancelled


class _Watcher:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.watches: dict[int, Watch] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        threading.Thread(target=self._run, name="run-cancel-watch", daemon=True).start()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            time.sleep(POLL_SECONDS)
            with self.lock:
                watches = list(self.watches.values())
                if not watches:
                    self.wake.clear()
                    continue
            try:
                raised = cache.get_many([_key(w.run_id) for w in watches])
            except Exception:
                logger.warning("could not read cancel flags", exc_info=True)
                time.sleep(1)  # Redis is down: try again, without a warning every poll
                continue
            for watch in watches:
                if raised.get(_key(watch.run_id)):
                    with self.lock:  # only while it is watched: the thread may have moved on
                        if self.watches.get(id(watch)) is watch:
                            watch.fired = True
                            _cancelled_threads.add(watch.thread)
                            # again on every poll while it lasts: a retried request is shut too
                            transport.abort_reads_of(watch.thread)


_watcher: _Watcher | None = None
_watcher_lock = threading.Lock()


@contextlib.contextmanager
def watching(run_id: int) -> Iterator[Watch]:
    """While in it, a cancel of the run shuts the connection this thread reads its answer from."""
    global _watcher
    if _watcher is None or _watcher.pid != os.getpid():  # a forked worker needs its own thread
        with _watcher_lock:
            if _watcher is None or _watcher.pid != os.getpid():
                _watcher = _Watcher()
    watcher, watch = _watcher, Watch(run_id)
    with watcher.lock:
        watcher.watches[id(watch)] = watch
        watcher.wake.set()
    try:
        yield watch
    finally:
        with watcher.lock:
            watcher.watches.pop(id(watch), None)
        _cancelled_threads.discard(watch.thread)
        transport.forget_thread(watch.thread)
