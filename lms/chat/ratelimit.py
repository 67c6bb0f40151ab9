"""Flood limits: at most `limit` hits per `window` seconds per key, across every process.

A sliding window: a sorted set of hit times per key in Redis (one atomic script), or a deque
per key in memory when there is no Redis (one process: the demo and development).
"""

import math
import threading
import time
import uuid
from collections import defaultdict, deque

from django.conf import settings

_SCRIPT = """
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(oldest[2] + window - now)
end
redis.call('ZADD', key, now, member)
redis.call('EXPIRE', key, math.ceil(window))
return '0'
"""

_memory: dict[str, deque] = defaultdict(deque)
_lock = threading.Lock()
_redis = {}


def hit(key: str, *, limit: int, window: float) -> int:
    """Count one hit; 0 if allowed, else the whole seconds to wait before the next is."""
    now = time.time()
    if settings.REDIS_URL:
        try:
            return _hit_redis(key, now, limit, window)
        except Exception:
            pass  # Redis down: limit within this process rather than not at all.
    with _lock:
        hits = _memory[key]
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return max(1, math.ceil(hits[0] + window - now))
        hits.append(now)
        return 0


def _hit_redis(key: str, now: float, limit: int, window: float) -> int:
    import redis

    client = _redis.get(settings.REDIS_URL)
    if client is None:
        with _lock:  # one client per process: a spare one closes its pool when collected
            client = _redis.get(settings.REDIS_URL)
            if client is None:
                client = _redis[settings.REDIS_URL] = redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
                )
    name = f"{settings.REALTIME_REDIS_PREFIX}:ratelimit:{key}"
    wait = float(client.eval(_SCRIPT, 1, name, now, window, limit, uuid.uuid4().hex))
    return max(1, math.ceil(wait)) if wait > 0 else 0


def reset() -> None:
    """Forget every in-memory count (tests)."""
    with _lock:
        _memory.clear()
