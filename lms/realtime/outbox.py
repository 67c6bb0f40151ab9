"""Announcements a request makes are sent once its response is.

An event is stored when its transaction commits, inside the request; announcing it right
away would set this worker's own streams writing it out (thousands of them in a lecture)
while the response still waits on the same event loop, so the person who posted would wait
for everyone else to get their message first. The ASGI router (`lms.realtime.asgi`) runs
each Django request inside `after_response()`: the request's announcements wait in a list
and go out together, in one Redis round trip, as soon as the response is sent. Publishing
outside a request (commands, the hub's own callbacks, the test client) announces at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from contextvars import ContextVar

from django.conf import settings

logger = logging.getLogger(__name__)

# asgiref runs the request's synchronous code in a copy of this context: same list.
_pending: ContextVar[list[dict] | None] = ContextVar("lms_realtime_pending", default=None)
_clients: dict[asyncio.AbstractEventLoop, object] = {}


def defer(message: dict) -> bool:
    """Hold `message` (an event, or a control message with an `op`) until the current
    request's response is sent; false outside a request."""
    pending = _pending.get()
    if pending is None:
        return False
    pending.append(message)
    return True


@asynccontextmanager
async def after_response():
    pending: list[dict] = []
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
        if pending:
            await announce(pending)


async def announce(messages: list[dict]) -> None:
    """Send stored events to every process (through Redis) or to this one's hub."""
    from lms.realtime.hub import current_hub, redis_key

    if not settings.REDIS_URL:
        hub = current_hub()
        if hub is not None:
            for m in messages:
                if "op" in m:
                    hub.recheck_user(m["user_id"])
                else:
                    hub.deliver(m["channel"], m["event_type"], m["data"], m["pub_id"])
        return
    import redis

    events, control = redis_key("events"), redis_key("control")
    try:
        async with _client().pipeline(transaction=False) as pipe:
            for message in messages:
                # Events, and control messages (`op`: a recheck of a user's streams).
                pipe.publish(control if "op" in message else events, json.dumps(message))
            await pipe.execute()
    except (redis.RedisError, OSError) as error:
        # Stored events reach every process from storage once Redis is back.
        logger.warning("Could not publish to Redis (%s); delivery resumes when it is back.", error)


def _client():
    from redis.asyncio import Redis

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]
        client = _clients[loop] = Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    return client
