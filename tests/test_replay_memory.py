"""A worker's memory under the replay attack: many large stored events, then ten streams at
once that ask for everything since `:0` on many channels.

Each test prints the worker's resident memory before, at its peak and after (run with `-s`
to read the figures). A replay is bounded per channel in events and bytes, and written as it
is read, so neither the attack nor the largest replay still allowed moves the worker by more
than a few tens of megabytes.
"""

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django_eventstream.models import Event as StoredEvent
from django_eventstream.models import EventCounter

from lms.realtime import channel
from lms.realtime.storage import REPLAY_MAX_BYTES
from tests.conftest import run
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHANNELS = 16
STREAMS = 10  # the per-user stream cap
EVENT_CHARS = 4000
MAX_GROWTH = 64 * 1024 * 1024


def memory(pid: int) -> dict[str, int]:
    """The process's resident set now and at its peak, in bytes."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) * 1024
    return found


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def seed(names: list[str], count: int) -> None:
    """`count` stored events of about EVENT_CHARS characters on each channel."""
    data = json.dumps("<li>" + "x" * (EVENT_CHARS - 9) + "</li>")
    for name in names:
        rows = [StoredEvent(channel=name, type="", data="", eid=0)]
        rows += [StoredEvent(channel=name, type="message_updated", data=data, eid=n) for n in range(1, count + 1)]
        StoredEvent.objects.bulk_create(rows, batch_size=200)
        EventCounter.objects.create(name=name, value=count)


async def read_replay(url: str, session: str, last: str, until: bytes, minimum: int) -> int:
    """Open a stream and read its replay: at least `minimum` bytes or an id line ending with
    `until` (the stream reset), then up to the next keep-alive. The bytes read."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\n"
        f"Cookie: {settings.SESSION_COOKIE_NAME}={session}\r\nLast-Event-ID: {last}\r\n\r\n".encode()
    )
    await writer.drain()
    total, tail, seen = 0, b"", False
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 20)
            except TimeoutError:
                raise AssertionError(f"stalled after {total} bytes: {tail[-300:]!r}") from None
            if not chunk:
                raise ConnectionError("stream ended")
            total += len(chunk)
            tail = (tail + chunk)[-4096:]
            seen = seen or until in tail or total >= minimum
            if seen and tail.endswith(b":\n\n\r\n"):  # a keep-alive after the replay
                return total
    finally:
        writer.close()


def attack(server, session: str, names: list[str], count: int, minimum: int) -> dict:
    """Ten streams at once, each replaying every channel from 0; memory and bytes read."""
    query = "&".join(f"channel={name}" for name in names)
    url = f"{server.url}/events/?{query}"
    last = ",".join(f"{quote(name)}:0" for name in names)
    until = f"{quote(names[-1])}:{count}\n\n".encode()
    pid = server.process.pid
    before = memory(pid)["VmRSS"]
    reset_peak(pid)

    async def scenario():
        return await asyncio.gather(*(read_replay(url, session, last, until, minimum) for _ in range(STREAMS)))

    started = time.monotonic()
    read = run(scenario())
    elapsed = time.monotonic() - started
    peak = memory(pid)["VmHWM"]
    time.sleep(0.5)
    after = memory(pid)["VmRSS"]
    figures = {"before": before, "peak": peak, "after": after, "bytes_per_stream": read[0], "seconds": elapsed}
    mb = {k: round(v / 1e6, 1) if k != "seconds" else round(v, 1) for k, v in figures.items()}
    print(f"\n{STREAMS} streams x {len(names)} channels x {count} events of {EVENT_CHARS} chars: {mb} (MB)")
    return figures


@pytest.fixture
def rooms(course):
    return [RoomFactory(course=course, name=f"Room {n}") for n in range(CHANNELS)]


@pytest.fixture
def server(test_database_url):
    # A server of its own: its memory is measured from a fresh start.
    from tests.servers import AppServer

    server = AppServer({"DATABASE_URL": test_database_url}).start()
    yield server
    server.stop()


def test_the_replay_attack_does_not_grow_the_worker(server, rooms, member, session_for):
    names = [channel("room", room.pk) for room in rooms]
    seed(names, 490)  # under the count limit: only the bound in bytes stops it (31 MB a stream)
    figures = attack(server, session_for(member), names, 490, minimum=10**12)
    assert figures["bytes_per_stream"] < 64 * 1024  # every channel is reset, not replayed
    assert figures["peak"] - figures["before"] < MAX_GROWTH


def test_the_largest_replay_allowed_is_written_as_it_is_read(server, rooms, member, session_for):
    names = [channel("room", room.pk) for room in rooms]
    count = REPLAY_MAX_BYTES // (EVENT_CHARS + 8) - 2  # just under the bound on every channel
    seed(names, count)
    figures = attack(server, session_for(member), names, count, minimum=len(names) * count * EVENT_CHARS)
    assert figures["bytes_per_stream"] > len(names) * count * EVENT_CHARS  # replayed in full
    assert figures["peak"] - figures["before"] < MAX_GROWTH
