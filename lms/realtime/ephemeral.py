"""Short-lived sets, such as who is typing in a room: members expire by themselves.

`touch(kind, pk, member)` adds or refreshes a member for `ttl` seconds; `discard` removes one
at once; whenever a set gains or loses a member, the kind's `on_change(pk, members)` runs (in
the process that saw the change; for expiry, in the one process that swept it). Nothing is
written to the database: Redis sorted sets when REDIS_URL is set, memory otherwise.

While Redis is down these signals are simply not given (a warning, nothing raised): a typing
dot is not worth failing the request that carries it, nor the message that ends it.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from lms.realtime.hub import redis_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    ttl: float
    on_change: Callable[[int, list[int]], None]


_kinds: dict[str, Kind] = {}
_memory: dict[str, dict[int, dict[int, float]]] = {}
_lock = threading.Lock()


def register_ephemeral(kind: str, *, ttl: float, on_change: Callable[[int, list[int]], None]) -> None:
    _kinds[kind] = Kind(ttl, on_change)
    _memory.setdefault(kind, {})


def _keys(kind: str, pk: int) -> tuple[str, str]:
    # One set per object (its members), and one per kind (every member, for the sweeper).
    return redis_key(f"eph:{kind}:{pk}"), redis_key(f"eph:{kind}")


def _client():
    from lms.realtime import _redis_client

    return _redis_client()


def touch(kind: str, pk: int, member: int) -> bool:
    """Add or refresh `member`; announces (and returns True) only if it was not there."""
    spec = _kinds[kind]
    expiry = time.time() + spec.ttl
    if settings.REDIS_URL:
        one, every = _keys(kind, pk)
        try:
            with _client().pipeline(transaction=True) as pipe:
                pipe.zadd(one, {member: expiry})
                pipe.zadd(every, {f"{pk}:{member}": expiry})
                pipe.expire(one, int(spec.ttl) + 60)
                added, *_ = pipe.execute()
        except _redis_errors() as error:
            logger.warning("Redis is unavailable (%s): %s signal not given.", error, kind)
            return False
    else:
        with _lock:
            members = _memory[kind].setdefault(pk, {})
            added = member not in members
            members[member] = expiry
    if added:
        spec.on_change(pk, members_of(kind, pk))
    return bool(added)


def discard(kind: str, pk: int, member: int) -> bool:
    """Remove `member` now (a message was sent); announces if it was there."""
    if settings.REDIS_URL:
        one, every = _keys(kind, pk)
        try:
            with _client().pipeline(transaction=True) as pipe:
                pipe.zrem(one, member)
                pipe.zrem(every, f"{pk}:{member}")
                removed, _ = pipe.execute()
        except _redis_errors() as error:
            # The member expires by itself once Redis is back.
            logger.warning("Redis is unavailable (%s): %s signal not withdrawn.", error, kind)
            return False
    else:
        with _lock:
            removed = _memory[kind].get(pk, {}).pop(member, None) is not None
    if removed:
        _kinds[kind].on_change(pk, members_of(kind, pk))
    return bool(removed)


def members_of(kind: str, pk: int) -> list[int]:
    """The members now, oldest first."""
    now = time.time()
    if settings.REDIS_URL:
        one, _ = _keys(kind, pk)
        try:
            return [int(m) for m in _client().zrangebyscore(one, now, "+inf")]
        except _redis_errors() as error:
            logger.warning("Redis is unavailable (%s): %s members unknown.", error, kind)
            return []
    with _lock:
        members = _memory[kind].get(pk, {})
        return [m for m, expiry in members.items() if expiry > now]


def _redis_errors() -> tuple[type[Exception], ...]:
    import redis

    return (redis.RedisError, OSError)


def sweep(now: float | None = None) -> int:
    """Drop expired members of every kind and announce the sets that changed; how many did.

    Run every half second by each process's hub; with Redis, each expired member is removed
    by exactly one process (the one whose ZREM wins), which announces it.
    """
    now = now if now is not None else time.time()
    changed: dict[str, set[int]] = {}
    for kind in _kinds:
        if settings.REDIS_URL:
            client = _client()
            _, every = _keys(kind, 0)
            for entry in client.zrangebyscore(every, "-inf", now, start=0, num=500):
                if client.zrem(every, entry):
                    pk, _, member = entry.decode().partition(":")
                    client.zrem(_keys(kind, int(pk))[0], member)
                    changed.setdefault(kind, set()).add(int(pk))
        else:
            with _lock:
                for pk, members in list(_memory[kind].items()):
                    expired = [m for m, expiry in members.items() if expiry <= now]
                    for member in expired:
                        del members[member]
                    if expired:
                        changed.setdefault(kind, set()).add(pk)
                    if not members:
                        del _memory[kind][pk]
    count = 0
    for kind, pks in changed.items():
        for pk in pks:
            _kinds[kind].on_change(pk, members_of(kind, pk))
            count += 1
    return count
