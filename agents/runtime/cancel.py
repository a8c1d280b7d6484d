"""Cancellation flags in Redis: cheap to check between stream chunks, visible to every worker."""

from __future__ import annotations

from django.core.cache import cache

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
