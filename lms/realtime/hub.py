"""The per-process fan-out: one hub per worker process, serving every open stream in it.

An event reaches a hub from Redis (any process published it), from this process directly when
there is no Redis, or from storage when the hub catches up. The hub keeps each channel's
events in id order (holding an early arrival until the event before it comes, or reading the
gap from storage), encodes each event once, and appends it to the queue of every stream
subscribed to the channel. Streams write their queues out; they never touch the database
while they wait.

django-eventstream's own listener is not used: it subscribes to Redis once and never again,
so an outage of a few seconds silently ended live delivery until the process restarted; it
dropped events past ten per wake-up; and its kicks reached only one process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import deque
from urllib.parse import quote
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import OperationalError, connections

from lms.realtime.channels import is_watched, occupancy_callback, presence_callback

logger = logging.getLogger(__name__)


def redis_key(name: str) -> str:
    """Our Redis names share a prefix, so several deployments (or test runs) can share a server."""
    return f"{settings.REALTIME_REDIS_PREFIX}:realtime:{name}"


# A stream that falls this far behind (a stalled client) catches up from storage instead.
MAX_QUEUED = 2000
# How long an event that arrived early waits for the one before it, before reading storage.
GAP_WAIT = 0.25
# How much a reconnecting or lagging stream replays before it is told to reload instead.
REPLAY_LIMIT = 500
# Streams are counted per process (a hash of user -> streams) under a lease this long, renewed
# every LEASE_RENEW seconds: a process that dies stops counting within LEASE_SECONDS.
LEASE_SECONDS = 5.0
LEASE_RENEW = 1.5
# Now and then each process rewrites its counts whole, mending whatever an outage skewed.
RESYNC_SECONDS = 30.0

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_db_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="realtime-db")


def encode_event(event_type: str, data: str) -> str:
    """The `event:` and `data:` lines of one server-sent event, without its id."""
    event_type = re.sub(r"[\r\n\0]", "", event_type)
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"event: {event_type}\n{lines}"


async def run_db(fn, *args, **kwargs):
    """Run `fn` in a worker thread and close its database connection before returning.

    Streams never keep a connection: each database touch opens one and gives it back.
    """

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.get_running_loop().run_in_executor(_db_executor, call)


class Item:
    """One event as every stream writes it, encoded once for all of them.

    `body` is its `event:` and `data:` lines. A stored event (`eid`) also has `whole`: the body
    with the `id:` line a stream of this one channel sends, so such a stream writes the same
    bytes object as every other, with no per-stream work.
    """

    __slots__ = ("channel", "eid", "body", "whole")

    def __init__(self, channel: str, eid: int | None, body: bytes):
        self.channel = channel
        self.eid = eid
        self.body = body
        self.whole = body + f"id: {quote(channel)}:{eid}\n\n".encode() if eid is not None else body + b"\n"

    @classmethod
    def encode(cls, channel: str, eid: int | None, event_type: str, data: str) -> "Item":
        return cls(channel, eid, encode_event(event_type, data).encode())


KEEPALIVE = Item("", None, b":\n")


class Subscriber:
    """One open event stream, as the hub sees it."""

    __slots__ = (
        "key", "user_id", "channels", "items", "wake", "overflow", "closed", "error", "reset",
        "session_key", "expired",
    )

    def __init__(self, user_id: int, channels: list[str], session_key: str | None = None):
        self.key = uuid.uuid4().hex
        self.user_id = user_id
        self.channels = channels
        self.session_key = session_key  # re-checked when the user's access may have changed
        self.expired = False  # reached its maximum lifetime: the page reconnects
        self.items: deque[Item] = deque()
        self.wake = asyncio.Event()
        self.overflow = False  # fell behind: catch up from storage
        self.closed = False  # client gone or server stopping
        self.error: dict | None = None  # ends the stream with a stream-error event
        self.reset: set[str] = set()  # channels whose gap is older than storage keeps

    def push(self, item: Item) -> None:
        if len(self.items) >= MAX_QUEUED:
            self.items.clear()
            self.overflow = True
        else:
            self.items.append(item)
        self.wake.set()

    def end(self, error: dict | None = None) -> None:
        if error is not None:
            self.error = error
        else:
            self.closed = True
        self.wake.set()


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.by_channel: dict[str, set[Subscriber]] = {}
        self.by_user: dict[int, set[Subscriber]] = {}
        self.channel_last: dict[str, int] = {}
        self.pending: dict[str, dict[int, Item]] = {}
        self.gap_timers: dict[str, asyncio.TimerHandle] = {}
        self.redis_url = settings.REDIS_URL
        self.redis = None  # an asyncio client for the per-user stream count, when Redis is up
        self.redis_up = False
        self.redis_tried = asyncio.Event()  # set once the first connection to Redis is tried
        self.tasks: list[asyncio.Task] = []
        self.started = False
        self.stopping = False  # the server was told to stop: streams end, new ones at once
        # Channels whose number of streams changed since it was last announced.
        self.occupancy_dirty: set[str] = set()
        self.worker_id = uuid.uuid4().hex[:12]

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        self.tasks.append(self.loop.create_task(self._tick()))
        self.tasks.append(self.loop.create_task(self._poll_storage()))
        self.tasks.append(self.loop.create_task(self._announce_occupancy()))
        self.tasks.append(self.loop.create_task(self._sweep_ephemeral()))
        if self.redis_url:
            self.tasks.append(self.loop.create_task(self._listen()))
            self.tasks.append(self.loop.create_task(self._heartbeat()))

    async def stop(self) -> None:
        for subscriber in [s for subs in self.by_user.values() for s in subs]:
            subscriber.end()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        if self.redis is not None:
            await self._quietly(self._release_lease())
            await self.redis.aclose()

    # -- subscribers --------------------------------------------------------------------

    def add(self, subscriber: Subscriber) -> None:
        for name in subscriber.channels:
            self.by_channel.setdefault(name, set()).add(subscriber)
            self._occupancy_changed(name)
        self.by_user.setdefault(subscriber.user_id, set()).add(subscriber)
        if self.stopping:  # admitted while the server was told to stop: ends after its replay
            subscriber.end()

    def remove(self, subscriber: Subscriber) -> None:
        for name in subscriber.channels:
            subs = self.by_channel.get(name)
            if subs is None:
                continue
            subs.discard(subscriber)
            self._occupancy_changed(name)
            if not subs:
                del self.by_channel[name]
                self.channel_last.pop(name, None)
                self.pending.pop(name, None)
                timer = self.gap_timers.pop(name, None)
                if timer:
                    timer.cancel()
        mine = self.by_user.get(subscriber.user_id)
        if mine is not None:
            mine.discard(subscriber)
            if not mine:
                del self.by_user[subscriber.user_id]
        if self.redis_up and self.redis is not None:
            self.loop.create_task(self._quietly(self.redis.hincrby(self._counts_key(), subscriber.user_id, -1)))

    # -- the per-user limit of streams, across processes ----------------------------------
    #
    # Each process keeps, in a hash of its own, how many streams each user has open in it;
    # the hash lives only as long as the process renews its lease (`_heartbeat`), and a
    # sorted set lists the processes by lease expiry. A user's count is the sum of their
    # field over the processes whose lease holds: a killed process stops counting within
    # LEASE_SECONDS, with no clean-up by anyone.

    def _counts_key(self, worker_id: str | None = None) -> str:
        return redis_key(f"streams-of:{worker_id or self.worker_id}")

    async def admit(self, subscriber: Subscriber, limit: int) -> bool:
        """Whether the user may open one more stream: at most `limit` across all processes."""
        local = len(self.by_user.get(subscriber.user_id, ()))
        if local >= limit:
            return False
        if self.redis_url and not self.redis_tried.is_set():
            # A process's first streams wait for its first connection, or they go uncounted.
            try:
                await asyncio.wait_for(self.redis_tried.wait(), 2)
            except TimeoutError:
                pass
        if not (self.redis_up and self.redis is not None):
            return True
        user, mine = subscriber.user_id, self._counts_key()
        now = time.time()
        try:
            # Count this stream first, then the total: of two racing for the last place,
            # neither is let past the limit.
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(mine, user, 1)
                pipe.pexpire(mine, int(LEASE_SECONDS * 1000))
                pipe.zadd(redis_key("workers"), {self.worker_id: now + LEASE_SECONDS})
                pipe.zrangebyscore(redis_key("workers"), now, "+inf")
                *_, workers = await pipe.execute()
            others = [w.decode() for w in workers if w.decode() != self.worker_id]
            async with self.redis.pipeline(transaction=False) as pipe:
                for worker in others:
                    pipe.hget(self._counts_key(worker), user)
                pipe.hget(mine, user)
                counts = await pipe.execute()
            if sum(int(c or 0) for c in counts) > limit:
                await self.redis.hincrby(mine, user, -1)
                return False
        except Exception as error:  # Redis down: the per-process limit still holds.
            logger.warning("Could not count streams in Redis (%s); using this process's count.", error)
        return True

    async def _heartbeat(self) -> None:
        """Renew this process's lease on its stream counts; rewrite them whole now and then."""
        resync_at = 0.0
        while True:
            if self.redis_up and self.redis is not None:
                now = time.time()
                try:
                    if now >= resync_at:
                        await self._write_counts()
                        resync_at = now + RESYNC_SECONDS
                    async with self.redis.pipeline(transaction=False) as pipe:
                        pipe.pexpire(self._counts_key(), int(LEASE_SECONDS * 1000))
                        pipe.zadd(redis_key("workers"), {self.worker_id: now + LEASE_SECONDS})
                        pipe.zremrangebyscore(redis_key("workers"), "-inf", now - 60)
                        await pipe.execute()
                except Exception as error:
                    logger.warning("Could not renew the stream lease in Redis (%s).", error)
                    resync_at = 0.0
            else:
                resync_at = 0.0  # Redis is back: write the counts whole (it may have lost them)
            await asyncio.sleep(LEASE_RENEW)

    async def _write_counts(self) -> None:
        counts = {user: len(subs) for user, subs in self.by_user.items() if subs}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._counts_key())
            if counts:
                pipe.hset(self._counts_key(), mapping=counts)
            pipe.pexpire(self._counts_key(), int(LEASE_SECONDS * 1000))
            pipe.zadd(redis_key("workers"), {self.worker_id: time.time() + LEASE_SECONDS})
            await pipe.execute()

    async def _release_lease(self) -> None:
        """A process that stops gives its streams back at once."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._counts_key())
            pipe.zrem(redis_key("workers"), self.worker_id)
            await pipe.execute()

    def note_position(self, channel: str, last_id: int) -> None:
        """A stream has caught up to `last_id` on `channel` from storage."""
        if channel in self.by_channel:
            self.channel_last.setdefault(channel, last_id)

    # -- delivery -----------------------------------------------------------------------

    def deliver(self, channel: str, event_type: str, data: str, eid: int | None) -> None:
        """Pass one event to this process's streams, in id order. Runs on the hub's loop."""
        subs = self.by_channel.get(channel)
        if not subs:
            return
        if eid is None:
            self._emit(Item.encode(channel, None, event_type, data), subs)
            return
        last = self.channel_last.get(channel)
        if last is not None:
            if eid <= last:
                return
            if eid > last + 1:
                self.pending.setdefault(channel, {})[eid] = Item.encode(channel, eid, event_type, data)
                if channel not in self.gap_timers:
                    self.gap_timers[channel] = self.loop.call_later(
                        GAP_WAIT, lambda: self.loop.create_task(self._fill_gap(channel))
                    )
                return
        self.channel_last[channel] = eid
        self._emit(Item.encode(channel, eid, event_type, data), subs)
        self._flush_pending(channel)

    def _emit(self, item: Item, subs) -> None:
        for subscriber in subs:
            subscriber.push(item)

    def _flush_pending(self, channel: str) -> None:
        pending = self.pending.get(channel)
        if not pending:
            return
        subs = self.by_channel.get(channel, ())
        while (nxt := self.channel_last[channel] + 1) in pending:
            self.channel_last[channel] = nxt
            self._emit(pending.pop(nxt), subs)
        for stale in [eid for eid in pending if eid <= self.channel_last[channel]]:
            del pending[stale]
        if not pending:
            del self.pending[channel]
            timer = self.gap_timers.pop(channel, None)
            if timer:
                timer.cancel()

    async def _fill_gap(self, channel: str) -> None:
        self.gap_timers.pop(channel, None)
        if channel not in self.pending or channel not in self.channel_last:
            return
        await self.catch_up([channel])

    async def catch_up(self, channels: list[str]) -> None:
        """Deliver from storage what these channels have past what this hub has seen."""
        from lms.realtime.storage import read_since

        known = {c: self.channel_last[c] for c in channels if c in self.channel_last}
        if not known:
            return
        try:
            found = await run_db(read_since, known, REPLAY_LIMIT)
        except Exception:
            logger.exception("Could not read missed events from storage.")
            return
        for channel, (events, current, reset) in found.items():
            if channel not in self.by_channel:
                continue
            if reset:
                self.channel_last[channel] = current
                self.pending.pop(channel, None)
                for subscriber in self.by_channel[channel]:
                    subscriber.reset.add(channel)
                    subscriber.wake.set()
                continue
            for event in events:
                self.deliver(channel, event.type, event.data, event.id)
            # Whatever is still pending is past the stored end: accept it as it stands.
            pending = self.pending.pop(channel, None)
            timer = self.gap_timers.pop(channel, None)
            if timer:
                timer.cancel()
            for eid in sorted(pending or ()):
                if eid > self.channel_last.get(channel, 0):
                    self.channel_last[channel] = eid
                    self._emit(pending[eid], self.by_channel[channel])

    # -- access changes -----------------------------------------------------------------

    def recheck_user(self, user_id: int) -> None:
        """Re-ask the channel checks for each of the user's streams; end those now refused."""
        subs = list(self.by_user.get(user_id, ()))
        if subs:
            self.loop.create_task(self._recheck(user_id, subs))

    async def _recheck(self, user_id: int, subs: list[Subscriber]) -> None:
        """A stream whose session no longer signs its user in (logout, password change) just
        ends: the page reconnects, is refused, and reloads to the sign-in page."""
        from lms.realtime.access import stream_refusal

        for subscriber in subs:
            if subscriber.closed or subscriber.error is not None:
                continue
            try:
                signed_in, refused = await run_db(
                    stream_refusal, user_id, subscriber.session_key, subscriber.channels
                )
            except Exception as error:  # the database is away: the next recheck or reconnect decides
                logger.warning("Could not re-check a stream of user %s (%s).", user_id, error)
                continue
            if not signed_in:
                subscriber.end()
            elif refused:
                subscriber.end(forbidden(refused))

    # -- occupancy (viewer counts) and presence (who is here) ---------------------------

    def _occupancy_changed(self, name: str) -> None:
        if is_watched(name):
            self.occupancy_dirty.add(name)

    def _local_state(self, name: str) -> dict:
        subs = self.by_channel.get(name, ())
        state = {"t": time.time(), "n": len(subs)}
        if presence_callback(name) is not None:
            state["u"] = sorted({s.user_id for s in subs})
        return state

    async def _announce_occupancy(self) -> None:
        """Once a second, announce the channels whose streams changed, across processes.

        Each process keeps its own state in a Redis hash per channel (one field per process,
        with the time it was written, so a dead process's share fades out). A one-second lock
        per channel lets one process announce the total per second, however many join.
        """
        while True:
            await asyncio.sleep(1.0)
            dirty, self.occupancy_dirty = self.occupancy_dirty, set()
            for name in dirty:
                try:
                    shared = await self._shared_state(name)
                except Exception:
                    logger.warning("Could not count the streams of %s.", name)
                    shared = None
                if shared is None:  # another process announces this second; try again next
                    self.occupancy_dirty.add(name)
                    continue
                count, users = shared
                pk = int(name.rpartition("-")[2])
                for callback, value in ((occupancy_callback(name), count), (presence_callback(name), users)):
                    if callback is None:
                        continue
                    try:
                        await run_db(callback, pk, value)
                    except OperationalError as error:  # the database away or a deadlock: next second
                        logger.warning("Occupancy callback for %s failed (%s); trying again.", name, error)
                        self.occupancy_dirty.add(name)
                    except Exception:
                        logger.exception("Occupancy callback for %s failed.", name)

    async def _shared_state(self, name: str) -> tuple[int, set[int]] | None:
        local = self._local_state(name)
        if not (self.redis_up and self.redis is not None):
            return local["n"], set(local.get("u", ()))
        key = redis_key(f"occupancy:{name}")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, self.worker_id, json.dumps(local))
            pipe.expire(key, 120)
            pipe.set(redis_key(f"occupancy-lock:{name}"), self.worker_id, nx=True, px=950)
            pipe.hgetall(key)
            _, _, locked, fields = await pipe.execute()
        if not locked:
            return None
        return merge_occupancy(fields.values())

    # -- background tasks ---------------------------------------------------------------

    async def _sweep_ephemeral(self) -> None:
        """Expire short-lived sets (who is typing) and announce the change."""
        from lms.realtime import ephemeral

        failing = False
        while True:
            await asyncio.sleep(0.5)
            if not ephemeral._kinds:
                continue
            try:
                await run_db(ephemeral.sweep)
                failing = False
            except Exception as error:
                if not failing:  # once per outage, not twice a second
                    logger.warning("Could not sweep expired typing signals (%s).", error)
                failing = True

    async def _tick(self) -> None:
        """Keep every stream alive (proxies drop silent connections) and refresh stream counts."""
        interval = settings.REALTIME_KEEPALIVE_SECONDS
        while True:
            await asyncio.sleep(interval)
            for subs in self.by_user.values():
                for subscriber in subs:
                    subscriber.push(KEEPALIVE)
            # Refresh this process's counts in Redis before they fade (no announcement).
            if self.redis_up and self.redis is not None:
                watched = [c for c in self.by_channel if is_watched(c)]
                if watched:
                    try:
                        async with self.redis.pipeline(transaction=False) as pipe:
                            for name in watched:
                                state = json.dumps(self._local_state(name))
                                pipe.hset(redis_key(f"occupancy:{name}"), self.worker_id, state)
                            await pipe.execute()
                    except Exception:
                        logger.warning("Could not refresh stream counts in Redis.")

    async def _poll_storage(self) -> None:
        """Pick up events that reached storage but not this process (safety net).

        Without Redis this is how an event published by another process (`manage.py shell`,
        a command) reaches the pages; with Redis it covers a publish lost in an outage.
        """
        interval = settings.REALTIME_POLL_SECONDS or (15.0 if self.redis_url else 1.0)
        while True:
            await asyncio.sleep(interval)
            if not self.channel_last:
                continue
            from lms.realtime.storage import current_ids

            try:
                current = await run_db(current_ids, list(self.channel_last))
            except Exception:
                logger.warning("Could not poll event storage.")
                continue
            behind = [c for c, cid in current.items() if cid > self.channel_last.get(c, cid)]
            if behind:
                await self.catch_up(behind)

    async def _listen(self) -> None:
        """Subscribe to Redis and keep subscribing: an outage only delays delivery."""
        from redis.asyncio import Redis

        backoff = 0.2
        while True:
            client = Redis.from_url(
                self.redis_url,
                health_check_interval=10,
                socket_connect_timeout=5,
                socket_keepalive=True,
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(redis_key("events"), redis_key("control"))
                self.redis = Redis.from_url(self.redis_url, socket_connect_timeout=5)
                self.redis_up = True
                backoff = 0.2
                # Redis may have lost our counts, or missed changes while it was away.
                await self._write_counts()
                self.redis_tried.set()
                # Whatever was published while we were not subscribed is in storage.
                await self.catch_up(list(self.by_channel))
                while True:
                    message = await pubsub.get_message(timeout=30)
                    if message is not None:
                        self._on_redis_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self.redis_up:
                    logger.warning("Lost Redis (%s); reconnecting.", error)
                self.redis_up = False
                self.redis_tried.set()
            finally:
                await self._quietly(pubsub.aclose())
                await self._quietly(client.aclose())
                if not self.redis_up and self.redis is not None:
                    await self._quietly(self.redis.aclose())
                    self.redis = None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 3.0)

    def _on_redis_message(self, message: dict) -> None:
        try:
            payload = json.loads(message["data"])
            if message["channel"] == redis_key("control").encode():
                if payload.get("op") == "recheck":
                    self.recheck_user(int(payload["user_id"]))
                return
            eid = payload.get("pub_id")
            self.deliver(
                payload["channel"],
                payload["event_type"],
                payload["data"],
                int(eid) if eid is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            logger.warning("Ignored a malformed realtime message: %r", message.get("data"))

    @staticmethod
    async def _quietly(awaitable) -> None:
        try:
            await awaitable
        except Exception:
            pass


def merge_occupancy(values) -> tuple[int, set[int]]:
    """Total streams and the users among them, from each process's share (fresh ones only)."""
    now, total, users = time.time(), 0, set()
    for value in values:
        try:
            state = json.loads(value)
        except ValueError:
            continue
        if now - state["t"] < 60:
            total += state["n"]
            users.update(state.get("u", ()))
    return total, users


def forbidden(channels: list[str]) -> dict:
    return {
        "condition": "forbidden",
        "text": "Permission denied to channels: " + ", ".join(sorted(channels)),
        "channels": sorted(channels),
    }


_hub: Hub | None = None


def get_hub() -> Hub:
    """This process's hub, bound to the running event loop (started on first use)."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop:
        _hub = Hub(loop)
        _hub.start()
    return _hub


def current_hub() -> Hub | None:
    """The hub if one is running in this process, for publishers in other threads."""
    if _hub is not None and not _hub.loop.is_closed() and _hub.loop.is_running():
        return _hub
    return None
