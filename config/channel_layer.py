"""channels_redis's layer, with a group send that a plain thread can call, in fewer round trips.

Workers publish every run and workflow event from one background thread (`agents.runtime.events`).
Through channels_redis that thread had to run an event loop, and each `group_send` cost four Redis
round trips on the asyncio client (prune the group, list it, prune each member's queue, send), two
even when nobody listened, which is the usual case for an API run. Here `group_send_blocking` does
the same work on the synchronous client in two Lua calls, and in one when the group is empty:

1. prune the group's expired members and list the rest;
2. for each member's queue (on its shard): prune expired messages, then add the message unless the
   queue is at capacity, channels_redis's own rule.

Keys, serialization (the random prefix, encryption if configured) and message shapes are
channels_redis's, so consumers on the normal async layer read these messages unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer

logger = logging.getLogger(__name__)

MEMBERS_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# channels_redis's group-send script, with the per-queue prune (a pipeline of its own there) folded in.
SEND_LUA = """
local over_capacity = 0
local current_time = ARGV[#ARGV - 2]
local expiry = ARGV[#ARGV - 1]
local stale = ARGV[#ARGV]
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, stale)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], current_time, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


class RedisChannelLayer(BaseRedisChannelLayer):
    """The async API is channels_redis's; `group_send_blocking` is for threads without a loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._blocking: dict[int, tuple[Any, Any, Any]] = {}
        self._blocking_lock = threading.Lock()

    def _blocking_client(self, index: int) -> tuple[Any, Any, Any]:
        """A synchronous client for shard `index`, with its two scripts (EVALSHA, loaded on demand)."""
        found = self._blocking.get(index)
        if found is None:
            with self._blocking_lock:
                found = self._blocking.get(index)
                if found is None:
                    host = dict(self.hosts[index])
                    address = host.pop("address", None)
                    host.pop("sentinels", None)
                    client = redis.Redis.from_url(address, **host) if address else redis.Redis(**host)
                    found = (client, client.register_script(MEMBERS_LUA), client.register_script(SEND_LUA))
                    self._blocking[index] = found
        return found

    def group_send_blocking(self, group: str, message: dict[str, Any]) -> int:
        """Send `message` to every channel in `group`; returns how many channels received it."""
        self.require_valid_group_name(group)  # raises on a bad name
        now = time.time()
        _, members, _ = self._blocking_client(self.consistent_hash(group))
        names = [
            n.decode("utf8")
            for n in members(keys=[self._group_key(group)], args=[int(now) - self.group_expiry])
        ]
        if not names:
            return 0
        by_shard, messages, capacities = self._map_channel_keys_to_connection(names, message)
        stale = int(now) - int(self.expiry)
        over = 0
        for index, keys in by_shard.items():
            _, _, send = self._blocking_client(index)
            args = [messages[k] for k in keys] + [capacities[k] for k in keys] + [now, self.expiry, stale]
            over += int(send(keys=keys, args=args))
        if over:
            logger.info("%s of %s channels over capacity in group %s", over, len(names), group)
        return len(names) - over
