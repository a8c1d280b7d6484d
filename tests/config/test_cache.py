from __future__ import annotations

from django.core.cache import cache


def test_cache_reuses_one_redis_client_per_pool():
    client = cache._cache.get_client(write=True)

    cache.set("cache-test", {"n": 1}, 30)

    assert cache._cache.get_client(write=False) is client
    assert client.exists(cache.make_and_validate_key("cache-test")) == 1
    assert cache.get("cache-test") == {"n": 1}
    cache.delete("cache-test")
    assert cache.get("cache-test") is None


def test_cache_objects_of_other_threads_share_the_connection_pool():
    """Django makes a cache object per thread (and per ASGI request); they must not each open
    their own Redis connections."""
    import threading

    from django.core.cache import caches

    seen = {}

    def in_a_thread():
        other = caches["default"]
        seen["same_object"] = other is cache
        seen["client"] = other._cache.get_client(write=True)
        seen["value"] = other.get("cache-shared")

    cache.set("cache-shared", 7, 30)
    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()

    assert seen["same_object"] is False  # a cache object of its own...
    assert seen["client"] is cache._cache.get_client(write=True)  # ...on the same client and pool
    assert seen["value"] == 7
    cache.delete("cache-shared")
