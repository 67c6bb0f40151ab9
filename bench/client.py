"""The load client: raw asyncio SSE streams in worker processes, and an open-loop poster.

Streams are `asyncio.Protocol`s over plain sockets (HTTP/1.1, chunked, as a browser reads them),
much lighter per connection than an HTTP library. A stream parses only what the bench needs:
each event's end, keep-alive comments, and the token the poster put in the message text,
`BQ<run>R<seq>T<intended send time, monotonic ns>E`. CLOCK_MONOTONIC is one clock for every
process on the machine, so a stream process and the poster compare times directly.

Each worker process serves commands from the bench over a pipe (`open`, `close`, `reset`,
`status`, `collect`, `stop`) and returns flat arrays, so that thousands of streams and hundreds
of thousands of deliveries cost little to hand back.
"""

from __future__ import annotations

import array
import asyncio
import os
import signal
import socket
import struct
import time
from collections import Counter

from bench.audience import AudienceWorker, Tally

LINGER0 = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT pile-up between runs
MARK = b"BQ"


class Stream(asyncio.Protocol):
    __slots__ = (
        "owner", "idx", "request", "transport", "port", "head", "headers_done", "chunked",
        "raw", "chunk_left", "crlf_left", "buf", "opened", "status", "seen", "closing", "hook",
    )

    def __init__(self, owner: Worker, idx: int, request: bytes):
        self.owner = owner
        self.idx = idx
        self.request = request
        self.transport = None
        self.port = 0
        self.head = b""
        self.headers_done = False
        self.chunked = False
        self.raw = b""
        self.chunk_left = 0
        self.crlf_left = 0
        self.buf = b""
        self.opened = owner.loop.create_future()
        self.status = 0
        self.seen = bytearray()
        self.closing = False
        self.hook = None  # figure 6: (stream, buf, start, end, now) for every event once open

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        self.port = sock.getsockname()[1]
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_result(False)
        elif not self.closing:
            self.owner.dropped += 1
        self.owner.streams.pop(self.idx, None)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if not self.headers_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end].decode("latin-1"), self.head[end + 4:]
            self.head = b""
            self.headers_done = True
            self.status = int(head.split(" ", 2)[1])
            self.chunked = "transfer-encoding: chunked" in head.lower()
            if self.status != 200:
                self.opened.set_result(False)
                self.close()
                return
        self.owner.received += len(data)
        if self.chunked:
            data = self.dechunk(data)
        buf = self.buf + data if self.buf else data
        start = 0
        now = 0
        owner = self.owner
        while (end := buf.find(b"\n\n", start)) >= 0:
            if buf[start] == 58:  # ":" a keep-alive comment
                if owner.record_heartbeats:
                    now = now or time.monotonic_ns()
                    owner.hb_idx.append(self.idx)
                    owner.hb_ns.append(now)
            elif self.hook is not None and self.opened.done():
                now = now or time.monotonic_ns()
                self.hook(self, buf, start, end, now)
            else:
                mark = buf.find(MARK, start, end)
                if mark >= 0:
                    now = now or time.monotonic_ns()
                    self.event(buf, mark, end, now)
                elif not self.opened.done():
                    self.opened.set_result(True)
                else:
                    owner.other_events += 1
            start = end + 2
        self.buf = buf[start:]

    def event(self, buf: bytes, mark: int, end: int, now: int) -> None:
        owner = self.owner
        r = buf.find(b"R", mark, end)
        t = buf.find(b"T", r, end)
        e = buf.find(b"E", t, end)
        if int(buf[mark + 2:r]) != owner.run:
            owner.stale += 1
            return
        seq = int(buf[r + 1:t])
        seen = self.seen
        if seq >= len(seen):
            seen.extend(bytes(seq - len(seen) + 1024))
        if seen[seq]:
            owner.duplicates += 1
            return
        seen[seq] = 1
        owner.seqs.append(seq)
        owner.arrived.append(now)
        owner.sent.append(int(buf[t + 1:e]))

    def dechunk(self, data: bytes) -> bytes:
        raw = self.raw + data if self.raw else data
        out = []
        pos, size = 0, len(raw)
        while pos < size:
            if self.chunk_left:
                take = min(self.chunk_left, size - pos)
                out.append(raw[pos:pos + take])
                pos += take
                self.chunk_left -= take
                if not self.chunk_left:
                    self.crlf_left = 2
                continue
            if self.crlf_left:
                skip = min(self.crlf_left, size - pos)
                pos += skip
                self.crlf_left -= skip
                continue
            eol = raw.find(b"\r\n", pos)
            if eol < 0:
                break
            self.chunk_left = int(raw[pos:eol].split(b";", 1)[0], 16)
            pos = eol + 2
            if not self.chunk_left:  # the last chunk: the server ended the stream
                self.crlf_left = 0
                pos = size
        self.raw = raw[pos:]
        return b"".join(out)


class Worker(AudienceWorker):
    """One client process: holds its streams and answers the bench's commands."""

    def __init__(self, conn, loop: asyncio.AbstractEventLoop):
        self.conn = conn
        self.loop = loop
        self.streams: dict[int, Stream] = {}
        self.done = loop.create_future()
        self.audience_init()
        self.reset(0, False)

    def reset(self, run: int, heartbeats: bool) -> dict:
        self.run = run
        self.record_heartbeats = heartbeats
        self.seqs = array.array("q")
        self.arrived = array.array("q")
        self.sent = array.array("q")
        self.hb_idx = array.array("q")
        self.hb_ns = array.array("q")
        self.duplicates = self.stale = self.dropped = self.other_events = self.received = 0
        self.events = 0
        self.tally = Tally()
        for stream in self.streams.values():
            stream.seen = bytearray()
        return {}

    def status(self) -> dict:
        return {
            "open": len(self.streams),
            "deliveries": len(self.seqs),
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "received": self.received,
            "events": self.events,
            "requests": self.tally.requests,
            "inflight": self.inflight,
        }

    def collect(self) -> dict:
        return {
            "seqs": self.seqs.tobytes(),
            "arrived": self.arrived.tobytes(),
            "sent": self.sent.tobytes(),
            "hb_idx": self.hb_idx.tobytes(),
            "hb_ns": self.hb_ns.tobytes(),
            "duplicates": self.duplicates,
            "stale": self.stale,
            "dropped": self.dropped,
            "other_events": self.other_events,
            "received": self.received,
            "open": len(self.streams),
            "events": self.events,
            "tally": self.tally.as_dict(),
        }

    async def open(self, port: int, path: str, items: list, concurrency: int, timeout: float,
                   deadline: float) -> dict:
        """Open one stream per (idx, session); answer when each is open or has failed.

        A stream gets `timeout` seconds once its turn comes (`concurrency` at a time), and the
        whole command `deadline` seconds: what is not open by then counts as failed.
        """
        semaphore = asyncio.Semaphore(concurrency)
        failures: Counter = Counter()
        opened = []
        give_up = self.loop.time() + deadline

        async def one(idx: int, session: str) -> None:
            request = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
                f"Cache-Control: no-cache\r\nCookie: sessionid={session}\r\n\r\n"
            ).encode()
            stream = Stream(self, idx, request)
            try:
                async with asyncio.timeout_at(give_up):
                    async with semaphore:
                        async with asyncio.timeout(timeout):
                            await self.loop.create_connection(lambda: stream, "127.0.0.1", port)
                            ok = await stream.opened
            except (OSError, TimeoutError) as error:
                failures[type(error).__name__] += 1
                stream.close()
                return
            if ok and stream.transport is not None and not stream.transport.is_closing():
                self.streams[idx] = stream
                opened.append((idx, stream.port))
            else:
                failures[f"HTTP {stream.status}" if stream.status else "closed"] += 1

        await asyncio.gather(*(one(idx, session) for idx, session in items))
        return {"opened": opened, "failures": dict(failures)}

    def close(self, idxs) -> dict:
        targets = list(self.streams) if idxs is None else [i for i in idxs if i in self.streams]
        for idx in targets:
            self.streams.pop(idx).close()
            viewer = self.viewers.pop(idx, None)
            if viewer is not None:
                viewer.stop()
        return {"closed": len(targets)}

    def on_command(self) -> None:
        try:
            name, kwargs = self.conn.recv()
        except (EOFError, OSError):  # the bench is gone
            if not self.done.done():
                self.done.set_result(None)
            return
        if name in ("open", "audience_open"):
            task = self.loop.create_task(getattr(self, name)(**kwargs))
            task.add_done_callback(
                lambda t: self.reply({"error": repr(t.exception())} if t.exception() else t.result())
            )
            return
        if name == "stop":
            self.close(None)
            self.reply({})
            self.done.set_result(None)
            return
        handler = {"close": self.close, "reset": self.reset, "status": self.status, "collect": self.collect,
                   "audience_react": self.audience_react, "audience_close": self.audience_close}
        self.reply(handler[name](**kwargs))

    def reply(self, value) -> None:
        try:
            self.conn.send(value)
        except (BrokenPipeError, OSError):
            pass


def worker_main(conn) -> None:
    """Entry point of a client process (multiprocessing, spawn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops us; Ctrl+C is for it
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        worker = Worker(conn, loop)
        loop.add_reader(conn.fileno(), worker.on_command)
        try:
            await worker.done
        finally:
            loop.remove_reader(conn.fileno())
            worker.close(None)

    asyncio.run(run())
    os._exit(0)


# -- the poster ----------------------------------------------------------------------------------


class HttpConnection:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.last_used = time.monotonic()

    async def request(self, data: bytes) -> int:
        """Send one request, read the response; its status."""
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if not size:
                    break
        if headers.get("connection", "").lower() == "close":
            self.close()
        self.last_used = time.monotonic()
        return status

    def close(self) -> None:
        self.writer.transport.abort()
        self.reader = None


class Poster:
    """Posts on a fixed schedule (open loop): a slow answer never delays the next post.

    Each post carries its intended send time; latencies are measured from it, so time spent
    waiting for a free connection counts against the server (no coordinated omission).
    """

    IDLE_LIMIT = 1.0  # the servers close idle keep-alive connections after 2 s

    def __init__(self, port: int, build, *, max_connections: int = 256, timeout: float = 10.0):
        self.port = port
        self.build = build  # (run, seq, intended_ns) -> request bytes
        self.max_connections = max_connections
        self.timeout = timeout
        self.idle: list[HttpConnection] = []
        self.total = 0
        self.freed = asyncio.Condition()

    async def _acquire(self) -> HttpConnection:
        while True:
            while self.idle:
                conn = self.idle.pop()
                if conn.reader is not None and time.monotonic() - conn.last_used < self.IDLE_LIMIT:
                    return conn
                if conn.reader is not None:
                    conn.close()
                self.total -= 1
            if self.total < self.max_connections:
                self.total += 1
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except BaseException:
                    self.total -= 1
                    raise
                return HttpConnection(reader, writer)
            async with self.freed:
                await self.freed.wait()

    async def _release(self, conn: HttpConnection | None) -> None:
        if conn is not None:
            if conn.reader is not None:
                self.idle.append(conn)
            else:
                self.total -= 1
        async with self.freed:
            self.freed.notify()

    async def _post(self, run: int, seq: int, intended: int, out: list) -> None:
        conn = None
        status = 0
        sent = 0
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self._acquire()
                sent = time.monotonic_ns()
                status = await conn.request(self.build(run, seq, intended))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            if conn is not None:
                conn.close()
        out.append((seq, intended, sent, time.monotonic_ns(), status))
        await self._release(conn)

    async def run(self, run: int, rate: float, count: int, first_seq: int = 1) -> list:
        """`count` posts at `rate` per second; [(seq, intended, sent, answered, status)]."""
        out: list = []
        tasks = set()
        period = 1e9 / rate
        start = time.monotonic_ns() + 20_000_000
        for i in range(count):
            intended = start + int(i * period)
            delay = (intended - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(self._post(run, first_seq + i, intended, out))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(list(tasks), timeout=self.timeout + 5)
        for task in tasks:
            task.cancel()
        return sorted(out)

    def close(self) -> None:
        for conn in self.idle:
            if conn.reader is not None:
                conn.close()
        self.idle.clear()
        self.total = 0
