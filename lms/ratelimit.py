"""Rate limits for every write a person can repeat: at most `limit` hits per `window` seconds.

A sliding window: a sorted set of hit times per key in Redis (one atomic script), shared by
every process, or a deque per key in memory when there is no Redis (one process: the demo and
development). While Redis cannot be reached, each process limits on its own in memory (a
warning is logged once per outage) rather than refusing or failing the write.

Views call `check(action, user, scope)` and answer a refusal with `refused(request, wait)`:
429 with `Retry-After`, and a notice the page shows (see `templates/ratelimit.html`).
"""

import logging
import math
import threading
import time
import uuid
from collections import defaultdict, deque

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

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

# After Redis fails, count in memory for this long before trying it again, so that an
# outage does not add a connection attempt to every write.
REDIS_RETRY_SECONDS = 5.0
_SWEEP_EVERY = 1000  # hits between two sweeps of forgotten in-memory keys

_memory: dict[str, deque] = defaultdict(deque)
_lock = threading.Lock()
_redis: dict = {}
_redis_down_until = 0.0
_hits_since_sweep = 0


def check(action: str, user, scope: object = "") -> int:
    """Count one `action` by `user` (within `scope`, e.g. a room): 0 if allowed, else seconds to wait.

    The limit of each action is `settings.RATE_LIMITS[action]`, a (limit, window) pair.
    """
    limit, window = settings.RATE_LIMITS[action]
    return hit(f"{action}:{scope}:{user.pk}", limit=limit, window=window)


def check_address(action: str, request: HttpRequest) -> int:
    """Like `check`, per client address, for what people do without logging in."""
    from lms.clientip import client_ip

    limit, window = settings.RATE_LIMITS[action]
    return hit(f"{action}:ip:{client_ip(request)}", limit=limit, window=window)


def refused(request: HttpRequest, wait: int, message: str = "") -> HttpResponse:
    """The 429 answer to a refused write: `Retry-After`, and a notice the page shows.

    For htmx the notice replaces `#slow-down` (in `base.html`) whatever the element's own
    swap, since buttons that post usually swap nothing; without htmx it is a page.
    """
    context = {"wait": wait, "message": message}
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(render_to_string("ratelimit.html#notice", context, request=request), status=429)
        response["HX-Retarget"] = "#slow-down"
        response["HX-Reswap"] = "outerHTML"
    else:
        response = HttpResponse(render_to_string("ratelimit.html", context, request=request), status=429)
    response["Retry-After"] = str(wait)
    return response


def hit(key: str, *, limit: int, window: float) -> int:
    """Count one hit; 0 if allowed, else the whole seconds to wait before the next is."""
    global _redis_down_until
    now = time.time()
    if settings.REDIS_URL and now >= _redis_down_until:
        try:
            return _hit_redis(key, now, limit, window)
        except Exception as error:  # Redis down: limit within this process rather than not at all
            if not _redis_down_until:
                logger.warning("Rate limits are per process while Redis is unreachable: %s", error)
            _redis_down_until = now + REDIS_RETRY_SECONDS
    return _hit_memory(key, now, limit, window)


def _hit_memory(key: str, now: float, limit: int, window: float) -> int:
    global _hits_since_sweep
    with _lock:
        hits = _memory[key]
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return max(1, math.ceil(hits[0] + window - now))
        hits.append(now)
        _hits_since_sweep += 1
        if _hits_since_sweep >= _SWEEP_EVERY:
            _hits_since_sweep = 0
            longest = max(w for _, w in settings.RATE_LIMITS.values())
            for stale in [k for k, v in _memory.items() if not v or v[-1] <= now - longest]:
                del _memory[stale]
        return 0


def _hit_redis(key: str, now: float, limit: int, window: float) -> int:
    global _redis_down_until
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
    if _redis_down_until:
        logger.warning("Redis is back: rate limits are shared by every process again.")
        _redis_down_until = 0.0
    return max(1, math.ceil(wait)) if wait > 0 else 0


def reset() -> None:
    """Forget every count, in memory and in Redis, and any Redis outage (tests)."""
    global _redis_down_until
    with _lock:
        _memory.clear()
    _redis_down_until = 0.0
    if settings.REDIS_URL:
        import redis

        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
            keys = list(client.scan_iter(f"{settings.REALTIME_REDIS_PREFIX}:ratelimit:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        except redis.RedisError:
            pass
