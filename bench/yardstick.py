"""The yardstick: a bare ASGI fan-out server, no Django, run the way the app is run.

    gunicorn bench.yardstick:app -k uvicorn_worker.UvicornWorker --workers 2 --bind 127.0.0.1:PORT

It speaks the app's protocol shape and does the least any server must do for it:

- `GET /events/?channel=room-1` answers `text/event-stream` (the app's headers, its opening
  `stream-open` event), then writes what its queue gives it: one `asyncio.Queue` per stream;
- `POST /publish/?channel=room-1` with the form field `token` PUBLISHes one event to Redis: the
  app's `message_created` fragment as measured in this run (`YARDSTICK_FRAGMENT`, with the
  token in the message text), as JSON, like the app;
- one Redis subscriber per worker process decodes each event once, encodes its SSE bytes once
  and puts the same bytes object on the queue of every stream of that channel;
- a keep-alive comment to every stream each `YARDSTICK_KEEPALIVE_SECONDS`.

There is no storage, no replay, no access check and no id bookkeeping: what the app does on
top of this is what the comparison measures.
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import parse_qs

from redis.asyncio import Redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL = os.environ.get("YARDSTICK_REDIS_CHANNEL", "bench-yardstick")
KEEPALIVE_SECONDS = float(os.environ.get("YARDSTICK_KEEPALIVE_SECONDS", "20"))
FRAGMENT = os.environ.get("YARDSTICK_FRAGMENT", "<li>{token}</li>")
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-store"),
    (b"x-accel-buffering", b"no"),
    (b"x-content-type-options", b"nosniff"),
]
OPENING = b"retry: 2000\nevent: stream-open\ndata:\n\n"
KEEPALIVE = b":\n\n"
CLOSE = object()

streams: dict[str, set[asyncio.Queue]] = {}
_state: dict = {}


def encode(channel: str, event: str, data: str, eid) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {event}\n{lines}id: {channel}:{eid}\n\n".encode()


async def listen() -> None:
    """The worker's one subscriber; resubscribes if Redis goes away."""
    while True:
        client = Redis.from_url(REDIS_URL)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            while True:
                message = await pubsub.get_message(timeout=30)
                if message is None:
                    continue
                event = json.loads(message["data"])
                queues = streams.get(event["channel"])
                if queues:
                    body = encode(event["channel"], event["event"], event["data"], event["id"])
                    for queue in queues:
                        queue.put_nowait(body)
        except asyncio.CancelledError:
            raise
        except Exception:
            await asyncio.sleep(0.5)
        finally:
            await pubsub.aclose()
            await client.aclose()


async def keepalive() -> None:
    while True:
        await asyncio.sleep(KEEPALIVE_SECONDS)
        for queues in streams.values():
            for queue in queues:
                queue.put_nowait(KEEPALIVE)


def start() -> None:
    if not _state:
        _state["tasks"] = [asyncio.ensure_future(listen()), asyncio.ensure_future(keepalive())]
        _state["redis"] = Redis.from_url(REDIS_URL)


async def serve_stream(scope, receive, send) -> None:
    query = parse_qs(scope["query_string"].decode())
    channels = list(dict.fromkeys(query.get("channel", [])))
    if not channels:
        await send({"type": "http.response.start", "status": 400, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"event: stream-error\ndata: {}\n\n"})
        return
    start()
    queue: asyncio.Queue = asyncio.Queue()
    for name in channels:
        streams.setdefault(name, set()).add(queue)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        queue.put_nowait(CLOSE)

    watcher = asyncio.ensure_future(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": OPENING, "more_body": True})
        while True:
            item = await queue.get()
            if item is CLOSE:
                break
            if queue.empty():
                body = item
            else:  # write whatever queued up meanwhile in one go, as the app does
                parts = [item]
                while not queue.empty():
                    parts.append(queue.get_nowait())
                if CLOSE in parts:
                    break
                body = b"".join(parts)
            await send({"type": "http.response.body", "body": body, "more_body": True})
    finally:
        watcher.cancel()
        for name in channels:
            queues = streams.get(name)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del streams[name]


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def publish(scope, receive, send) -> None:
    form = parse_qs((await read_body(receive)).decode())
    channel = parse_qs(scope["query_string"].decode()).get("channel", ["room-1"])[0]
    token = form.get("token", [""])[0]
    start()
    event = {
        "channel": channel,
        "event": "message_created",
        "data": FRAGMENT.replace("{token}", token),
        "id": form.get("seq", ["0"])[0],
    }
    await _state["redis"].publish(CHANNEL, json.dumps(event))
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in _state.get("tasks", []):
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/events/" and scope["method"] == "GET":
        await serve_stream(scope, receive, send)
    elif path == "/publish/" and scope["method"] == "POST":
        await publish(scope, receive, send)
    elif path == "/healthz":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok\n"})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
