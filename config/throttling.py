"""DRF's rate throttles as a counter in Redis: one round trip and constant work per request.

DRF's `SimpleRateThrottle` keeps every request's timestamp of the window in a cache entry that it
reads, unpickles, trims, pickles and writes back on each request: two round trips, and work that
grows with the rate (up to 1,200 timestamps a user at the default `THROTTLE_USER`). Here a window
starts with the first request of a client and lasts the rate's duration; one pipeline creates the
counter with that expiry if it is not there, counts the request and reads the time left, which
becomes `Retry-After` once the count passes the rate.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from rest_framework import throttling


class CountingThrottle(throttling.SimpleRateThrottle):
    num_requests: int  # set from the rate by DRF's __init__
    duration: int
    retry_after: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        # Not DRF's key: that one holds its pickled list of timestamps, which INCR cannot count.
        name = cache.make_and_validate_key(f"{key}:n")
        client = cache._cache.get_client(name, write=True)  # type: ignore[attr-defined]
        with client.pipeline(transaction=False) as pipe:
            pipe.set(name, 0, ex=self.duration, nx=True)
            pipe.incr(name)
            pipe.pttl(name)
            _, count, left_ms = pipe.execute()
        if count <= self.num_requests:
            return True
        self.retry_after = left_ms / 1000 if left_ms and left_ms > 0 else float(self.duration)
        return False

    def wait(self) -> float | None:
        return self.retry_after


class AnonRateThrottle(CountingThrottle, throttling.AnonRateThrottle):
    pass


class UserRateThrottle(CountingThrottle, throttling.UserRateThrottle):
    pass
