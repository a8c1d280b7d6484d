"""Django's Redis cache, with one connection pool and one client per server for the whole process.

Django keeps its cache objects per thread and, under ASGI, per request context, and each new
object builds its own `redis.ConnectionPool`. Under daphne that meant a fresh Redis connection
(connect, HELLO, CLIENT SETINFO with a package-metadata lookup) on every request that touched
the cache: some 15% of the CPU of a plain `/readyz`. Django also builds a new `redis.Redis` for
every cache call; its constructor copies some 170 response callbacks, about 0.2 ms of CPU.

Both are thread-safe (the pool also handles forks), so here they are shared by every cache
object with the same server and options.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends import redis as django_redis

_POOLS: dict[tuple[str, str], Any] = {}
_CLIENTS: dict[int, Any] = {}
_LOCK = threading.Lock()


class RedisCacheClient(django_redis.RedisCacheClient):
    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        server = self._servers[index]  # type: ignore[attr-defined]
        key = (server, repr(sorted(self._pool_options.items())))  # type: ignore[attr-defined]
        pool = _POOLS.get(key)
        if pool is None:
            with _LOCK:
                pool = _POOLS.get(key)
                if pool is None:
                    pool = _POOLS[key] = self._pool_class.from_url(server, **self._pool_options)  # type: ignore[attr-defined]
        return pool

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = _CLIENTS.get(id(pool))
        if client is None:
            with _LOCK:
                client = _CLIENTS.get(id(pool))
                if client is None:
                    client = _CLIENTS[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
