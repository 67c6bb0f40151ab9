"""The event-stream endpoint, as a plain ASGI app.

It runs outside Django's request handler on purpose: that handler gives every request a
thread of its own for as long as the response lasts, and a logged-in user's database
connection with it. Here a waiting stream is a coroutine and a queue: the database is used
only in short calls (who is asking, what they missed) that give their connection back.

Protocol, as django-eventstream speaks it: `?channel=<name>` (repeatable) names the channels;
`Last-Event-ID` or, when a new EventSource could not send it, `?lastEventId=` says where to
resume, as `<channel>:<id>,...`. A resume older than storage keeps gets `stream-reset`
(`data: {"channels": [...]}`), and the page reloads that part. Refusals: 400 for a malformed
request, 403 for a channel the user may not read, 429 past the per-user limit of streams.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
from urllib.parse import quote, unquote

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.handlers.asgi import ASGIRequest

from lms.realtime.access import refused_channels, user_from_session
from lms.realtime.channels import is_well_formed
from lms.realtime.hub import (
    REPLAY_LIMIT,
    Subscriber,
    encode_event,
    forbidden,
    get_hub,
    run_db,
)
from lms.realtime.storage import current_ids, plan_replay, read_page

logger = logging.getLogger(__name__)

MAX_CHANNELS = 32
MAX_LAST_EVENT_ID = MAX_CHANNELS * 300  # characters: every channel's name and position
MAX_EVENT_ID = 2**63 - 1  # stored ids are 64-bit
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]


class BadRequest(ValueError):
    pass


def parse_request(request: ASGIRequest) -> tuple[list[str], dict[str, int]]:
    """The channels asked for and the last ids to resume from.

    Anything malformed is a `BadRequest` (400): too many query parameters, names that are not
    channel names (NUL bytes, text that was not UTF-8, oversized), ids out of range.
    """
    try:
        query = request.GET
    except SuspiciousOperation as error:  # more than DATA_UPLOAD_MAX_NUMBER_FIELDS parameters
        raise BadRequest(str(error)) from None
    channels = list(dict.fromkeys(query.getlist("channel")))
    if not channels:
        raise BadRequest("No channels specified.")
    if len(channels) > MAX_CHANNELS:
        raise BadRequest(f"At most {MAX_CHANNELS} channels per stream.")
    if not all(is_well_formed(name) for name in channels):
        raise BadRequest("Malformed channel name.")
    raw = request.headers.get("Last-Event-ID", "")
    if not raw:
        # The last non-empty value: a reconnecting page may append a newer one.
        raw = next((v for v in reversed(query.getlist("lastEventId")) if v), "")
    if len(raw) > MAX_LAST_EVENT_ID:
        raise BadRequest("Last-Event-ID or lastEventId is too long.")
    last_ids: dict[str, int] = {}
    if raw and raw != "error":
        try:
            for part in raw.split(","):
                name, colon, value = part.rpartition(":")
                number = int(value)
                if not colon or not 0 <= number <= MAX_EVENT_ID:
                    raise ValueError
                if unquote(name) in channels:
                    last_ids[unquote(name)] = number
        except ValueError:
            raise BadRequest("Malformed Last-Event-ID or lastEventId.") from None
    return channels, last_ids


def admit(session_key: str | None, channels: list[str]) -> tuple[object, list[str]]:
    user = user_from_session(session_key)
    return user, refused_channels(user, channels)


def catch_up(channels: list[str], last_ids: dict[str, int]):
    """What to replay for the channels the client names, and the current id of the others."""
    plan = plan_replay({c: last_ids[c] for c in channels if c in last_ids}, REPLAY_LIMIT)
    fresh = current_ids([c for c in channels if c not in last_ids])
    return plan, fresh


def make_id(last_ids: dict[str, int], quoted: dict[str, str]) -> str:
    return ",".join(f"{quoted[c]}:{i}" for c, i in last_ids.items())


async def respond(send, status: int, condition: str, text: str, extra=None, headers=()):
    data = {"condition": condition, "text": text, **(extra or {})}
    body = encode_event("stream-error", json.dumps(data)) + "id: error\n\n"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": HEADERS + list(headers),
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


def read_request(scope) -> tuple[list[str], dict[str, int], str | None]:
    """Channels, last ids and session key. The request itself is not kept past this: an open
    stream holds only what it needs."""
    request = ASGIRequest(scope, io.BytesIO())
    request.get_host()
    channels, last_ids = parse_request(request)
    return channels, last_ids, request.COOKIES.get(settings.SESSION_COOKIE_NAME)


async def serve_stream(scope, receive, send) -> None:
    try:
        channels, last_ids, session_key = read_request(scope)
    except (BadRequest, SuspiciousOperation, UnicodeError) as error:  # DisallowedHost is one too
        await respond(send, 400, "bad-request", f"Invalid request: {error}")
        return

    try:
        user, refused = await run_db(admit, session_key, channels)
    except Exception:
        logger.exception("Could not check a stream's access.")
        await respond(send, 503, "unavailable", "Try again shortly.", headers=[(b"retry-after", b"5")])
        return
    if refused:
        await respond(send, 403, "forbidden", forbidden(refused)["text"], {"channels": refused})
        return

    hub = get_hub()
    subscriber = Subscriber(user.pk, channels, session_key)
    if not await hub.admit(subscriber, settings.REALTIME_MAX_STREAMS_PER_USER):
        await respond(
            send,
            429,
            "too-many-streams",
            "Too many open live pages: close a tab or two and reload.",
            headers=[(b"retry-after", b"30")],
        )
        return

    # Join the hub before reading storage: an event published in between arrives twice
    # (and is dropped by id) rather than not at all.
    hub.add(subscriber)
    watcher = None
    try:
        plan, fresh = await run_db(catch_up, channels, last_ids)
        quoted = {c: quote(c) for c in channels}
        state = {name: last_ids[name] if name in plan else fresh[name] for name in channels}

        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        watcher = asyncio.ensure_future(_watch_disconnect(receive, subscriber))
        opening = b"retry: 2000\nevent: stream-open\ndata:\n\n"
        await _write_replay(send, subscriber, plan, state, quoted, opening)
        for name in channels:
            hub.note_position(name, state[name])
        expiry = asyncio.get_running_loop().call_later(lifetime(), _expire, subscriber)
        try:
            await _pump(subscriber, state, quoted, send)
        finally:
            expiry.cancel()
    finally:
        hub.remove(subscriber)
        if watcher is not None:
            watcher.cancel()


def lifetime() -> float:
    """How long this stream may stay open: the setting, less up to a fifth at random, so the
    pages of a lecture that all opened at once do not all reconnect at once."""
    return settings.REALTIME_STREAM_MAX_SECONDS * random.uniform(0.8, 1.0)


def _expire(subscriber: Subscriber) -> None:
    subscriber.expired = True
    subscriber.end()


async def _watch_disconnect(receive, subscriber: Subscriber) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            subscriber.end()
            return


async def _pump(subscriber: Subscriber, state: dict[str, int], quoted: dict[str, str], send):
    """Write the subscriber's queue to the client until it leaves or is refused.

    A stream of one channel writes each event's shared bytes (`Item.whole`) as they are; only
    a stream of several channels builds its own `id:` line (it names every channel's position).
    """
    single = len(state) == 1
    while True:
        await subscriber.wake.wait()
        subscriber.wake.clear()
        if subscriber.expired:
            # Closed cleanly: the browser reconnects with this id (its session is checked
            # again then) and misses nothing, whatever this stream had not yet written. It
            # comes back at once (`retry`), and the next stream sets the usual delay again.
            tail = f"retry: 100\nid: {make_id(state, quoted)}\n\n".encode()
            await send({"type": "http.response.body", "body": tail, "more_body": True})
            break
        if subscriber.closed:
            break
        parts: list[bytes] = []
        if subscriber.overflow or subscriber.reset:
            await _recover(subscriber, state, quoted, send)
        items = subscriber.items
        while items:
            item = items.popleft()
            eid = item.eid
            if eid is None:  # a keep-alive, or an event that is not stored
                parts.append(item.whole)
                continue
            if eid <= state[item.channel]:
                continue  # already sent (replayed, or both from Redis and storage)
            state[item.channel] = eid
            if single:
                parts.append(item.whole)
            else:
                parts.append(item.body)
                parts.append(f"id: {make_id(state, quoted)}\n\n".encode())
        if subscriber.error is not None:
            data = json.dumps(subscriber.error)
            parts.append((encode_event("stream-error", data) + "id: error\n\n").encode())
        if parts:
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        if subscriber.error is not None:
            break
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _recover(subscriber: Subscriber, state: dict[str, int], quoted: dict[str, str], send):
    """Catch a stream up from storage after it fell behind or its gap became too old."""
    subscriber.reset.clear()
    subscriber.overflow = False
    subscriber.items.clear()
    plan = await run_db(plan_replay, {c: state[c] for c in subscriber.channels}, REPLAY_LIMIT)
    await _write_replay(send, subscriber, plan, state, quoted)


async def _write_replay(
    send, subscriber: Subscriber, plan: dict[str, tuple[int, bool]], state: dict[str, int], quoted, head=b""
) -> None:
    """Write a replay to the client as it is read: page by page, one channel after another.

    `plan` comes from `plan_replay`, so each channel's replay is bounded in events and bytes,
    and only one page of one channel is held at a time; channels whose gap is too large or too
    old get `stream-reset` first. `state` holds each channel's position and moves with it.
    A client that leaves stops the reading.
    """
    reset = [name for name, (_, was_reset) in plan.items() if was_reset]
    for name in reset:
        state[name] = plan[name][0]
    if reset:
        head += encode_event("stream-reset", json.dumps({"channels": reset})).encode()
        head += f"id: {make_id(state, quoted)}\n\n".encode()
    if head:
        await send({"type": "http.response.body", "body": head, "more_body": True})
    for name, (upto, was_reset) in plan.items():
        while not was_reset and state[name] < upto and not subscriber.closed:
            page = await run_db(read_page, name, state[name], upto)
            if not page:
                break
            parts = []
            for event in page:
                state[name] = event.id
                parts.append(encode_event(event.type, event.data))
                parts.append(f"id: {make_id(state, quoted)}\n\n")
            await send({"type": "http.response.body", "body": "".join(parts).encode(), "more_body": True})
