"""kombu's Redis transport, with one Redis client per channel instead of one per command.

kombu's Redis channel builds a new `redis.Redis` around its connection pool for every message it
publishes, acknowledges or marks as delivered (`Channel._create_client`), and a `redis.Redis` fills a
dictionary of about 170 response callbacks as it is made. Profiled here, that was a fifth of the CPU
of `task.delay()` in the web process, and a worker paid it twice per task (the delivery and the
acknowledgement of ack emulation). A client holds no connection of its own (each command takes one
from the pool and gives it back), so one client per channel and pool serves every thread that would
have built its own. Everything else is kombu's.

Settings name it as `CELERY_BROKER_TRANSPORT`, and as the `agentos-redis+socket://` scheme of a
unix-socket broker URL (kombu takes a URL's transport prefix over the setting).
"""

from __future__ import annotations

import threading
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, redis

ALIAS = "agentos-redis"


class Channel(redis.Channel):  # type: ignore[misc]  # kombu has no type hints
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._sync_client: Any = None
        self._sync_client_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        pool = self.pool
        if client is None or client.connection_pool is not pool:  # kombu replaces a pool it disconnected
            with self._sync_client_lock:
                client = self._sync_client
                if client is None or client.connection_pool is not pool:
                    client = self._sync_client = super()._create_client()
        return client


class Transport(redis.Transport):  # type: ignore[misc]
    Channel = Channel


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
