"""Server-sent events for the whole project: the only package that knows django-eventstream.

Apps register their channel families (`register_channel`), publish from their actions
(`publish_fragment_on_commit`), and give pages a stream URL (`event_stream_url`). Events are
stored by django-eventstream's model storage before they are announced, so a page that
reconnects with its last event id gets everything it missed.
"""

import json
import logging
import threading
from collections.abc import Iterable
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string

from lms.realtime import outbox
from lms.realtime.channels import can_read_channel, channel, parse_channel, register_channel
from lms.realtime.copies import key as stored_key
from lms.realtime.copies import register_source, rewrite_stored
from lms.realtime.hub import current_hub, redis_key

__all__ = [
    "can_read_channel",
    "channel",
    "event_stream_url",
    "last_event_id",
    "occupancy",
    "present_users",
    "parse_channel",
    "publish",
    "publish_fragment_on_commit",
    "publish_on_commit",
    "publish_snapshot_on_commit",
    "recheck_user_streams_on_commit",
    "register_channel",
    "register_source",
    "rewrite_stored",
    "stored_key",
]

logger = logging.getLogger(__name__)

STREAM_PATH = "/events/"
_redis: dict = {}
_redis_lock = threading.Lock()


def last_event_id(channels: list[str]) -> str:
    """The id a page passes back when it connects, so that nothing after it is lost.

    Read it before querying what the page shows: a duplicate beats a gap (the page ignores
    events it has already applied).
    """
    from django_eventstream import get_current_event_id

    return get_current_event_id(channels)


def event_stream_url(channels: list[str]) -> str:
    """The URL a page's `sse-connect` opens for `channels`, resuming from now."""
    query = [("channel", name) for name in channels]
    query.append(("lastEventId", last_event_id(channels)))
    return STREAM_PATH + "?" + urlencode(query)


def publish(
    channel_name: str,
    event: str,
    data: str,
    *,
    stored: bool = True,
    source: str | None = None,
    shows: Iterable[str] = (),
) -> int | None:
    """Store (unless `stored` is false) and announce one event; returns its id.

    With `source` (and `shows`), the stored event is rendered again when what it shows
    changes (`lms.realtime.copies`).

    Storing comes first, so a page that was away replays it. If Redis is down the event is
    still stored and every process picks it up from storage once Redis is back. Within a
    request the announcement waits until the response is sent (`lms.realtime.outbox`).
    """
    from django_eventstream.utils import get_storage, publish_event

    eid = storage_id = None
    if stored:
        with transaction.atomic():
            storage_id = get_storage().append_event(channel_name, event, data).id
            eid = int(storage_id)
            if source is not None:
                from lms.realtime.copies import remember

                remember(channel_name, eid, source, shows)
    message = {"channel": channel_name, "event_type": event, "data": data, "pub_id": eid}
    if outbox.defer(message):
        pass  # announced as soon as the request's response is sent
    elif settings.REDIS_URL:
        _publish_to_redis(redis_key("events"), message)
    else:
        hub = current_hub()
        if hub is not None:
            hub.loop.call_soon_threadsafe(hub.deliver, channel_name, event, data, eid)
    if settings.GRIP_URL:
        publish_event(
            channel_name,
            event,
            data,
            str(eid) if eid else None,
            str(eid - 1) if eid else None,
        )
    return eid


def publish_on_commit(channel_name: str, event: str, data: str, *, stored: bool = True) -> None:
    """Publish once the surrounding transaction commits; a rollback sends nothing."""
    transaction.on_commit(lambda: publish(channel_name, event, data, stored=stored), robust=True)


def publish_fragment_on_commit(
    channel_name: str,
    event: str,
    template: str,
    context: dict,
    *,
    stored: bool = True,
    source: str | None = None,
    shows: Iterable[str] = (),
) -> None:
    """Render `template` (usually "app/page.html#partial") and push it after commit.

    Rendered once per event, never per subscriber, and without a request: keep pushed
    partials viewer-neutral. `source` and `shows` as for `publish`.
    """

    def send() -> None:
        data = render_to_string(template, context).strip()
        publish(channel_name, event, data, stored=stored, source=source, shows=shows)

    transaction.on_commit(send, robust=True)


def occupancy(channel_name: str) -> int:
    """How many streams are open on a channel now, across processes (for a page's first paint;
    channels registered with `on_occupancy` then get updates pushed)."""
    return _occupancy_states([channel_name])[channel_name][0]


def present_users(channel_names: list[str]) -> dict[str, set[int]]:
    """Who has a stream open on each channel now (channels registered with `on_presence`)."""
    return {name: users for name, (_, users) in _occupancy_states(channel_names).items()}


def _occupancy_states(names: list[str]) -> dict[str, tuple[int, set[int]]]:
    from lms.realtime.hub import merge_occupancy

    if settings.REDIS_URL:
        import redis

        try:
            with _redis_client().pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hvals(redis_key(f"occupancy:{name}"))
                found = pipe.execute()
        except redis.RedisError:
            return {name: (0, set()) for name in names}
        return {name: merge_occupancy(values) for name, values in zip(names, found)}
    hub = current_hub()
    out = {}
    for name in names:
        subs = list(hub.by_channel.get(name, ())) if hub is not None else []
        out[name] = (len(subs), {s.user_id for s in subs})
    return out


def publish_snapshot_on_commit(lock, build) -> None:
    """For fragments that show a current state (a ranked list, poll results) after commit.

    Reading the state, rendering it and storing the event happen under a lock on `lock` (a
    queryset), so concurrent changes store their snapshots in the order they read them: the
    last event a page applies shows the latest state. `build()` returns a list of
    (channel, event, template, context), or of (channel, event, template, context, source,
    shows) for events to render again when what they show changes (as for `publish`).
    """

    def send() -> None:
        with transaction.atomic():
            list(lock.select_for_update())
            for channel_name, event, template, context, *copies in build():
                source, shows = copies or (None, ())
                data = render_to_string(template, context).strip()
                publish(channel_name, event, data, source=source, shows=shows)

    transaction.on_commit(send, robust=True)


def recheck_user_streams_on_commit(user_id: int) -> None:
    """After commit, end the user's open streams (on every process) that they may no longer read."""

    def send() -> None:
        message = {"op": "recheck", "user_id": user_id}
        if outbox.defer(message):
            pass  # sent with the request's events, once its response is
        elif settings.REDIS_URL:
            _publish_to_redis(redis_key("control"), message)
        else:
            hub = current_hub()
            if hub is not None:
                hub.loop.call_soon_threadsafe(hub.recheck_user, user_id)

    transaction.on_commit(send, robust=True)


def _publish_to_redis(key: str, message: dict) -> None:
    import redis

    try:
        _redis_client().publish(key, json.dumps(message))
    except redis.RedisError as error:
        # Stored events reach every process from storage once Redis is back.
        logger.warning("Could not publish to Redis (%s); delivery resumes when it is back.", error)


def _redis_client():
    """This process's one synchronous Redis client, shared by every thread (its pool is
    thread-safe).

    Created under a lock: two request threads that both found no client used to create one
    each, and the one left out of the dict closed its connection pool when it was collected,
    under the other thread's command in flight ("I/O operation on closed file").
    """
    client = _redis.get(settings.REDIS_URL)
    if client is None:
        import redis

        with _redis_lock:
            client = _redis.get(settings.REDIS_URL)
            if client is None:
                client = _redis[settings.REDIS_URL] = redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
                )
    return client
