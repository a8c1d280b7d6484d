"""config.heap: the start-up heap of daphne and the workers leaves the garbage collector's reach."""

import gc
import importlib
import sys

import pytest

from config import heap


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_settle_preloads_the_hot_modules_and_freezes_the_heap(unfrozen, settings):
    settings.GC_FREEZE = True
    assert gc.get_freeze_count() == 0
    heap.settle()
    assert all(name in sys.modules for name in heap.HOT_MODULES)
    # Everything alive is frozen: a full collection now only walks what was allocated since.
    assert gc.get_freeze_count() > 100_000
    assert len(gc.get_objects()) < gc.get_freeze_count() / 10


def test_settle_can_be_switched_off(unfrozen, settings):
    settings.GC_FREEZE = False
    heap.settle()
    assert gc.get_freeze_count() == 0


def test_the_workers_settle_when_ready():
    from celery.signals import worker_process_init, worker_ready

    from config import celery

    assert any(r() is celery._settle_heap for _, r in worker_ready.receivers)
    assert any(r() is celery._settle_heap for _, r in worker_process_init.receivers)


def test_daphne_settles_when_it_loads_the_application(monkeypatch):
    import config.asgi

    calls = []
    monkeypatch.setattr(heap, "settle", lambda: calls.append(1))
    importlib.reload(config.asgi)
    assert calls == [1]
