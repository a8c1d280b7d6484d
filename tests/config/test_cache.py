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
