"""A small server-sent events client for tests: raw asyncio, HTTP/1.0, one stream."""

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Event:
    type: str
    data: str
    id: str | None

    def json(self):
        return json.loads(self.data)


class SSEClient:
    def __init__(self, url: str, *, session: str | None = None, headers: dict | None = None):
        self.url = url
        self.session = session
        self.headers = headers or {}
        self.status = None
        self.response_headers: dict[str, str] = {}
        self._reader = self._writer = None
        self._buffer = ""
        self.last_id: str | None = None  # as a browser keeps it, for Last-Event-ID

    async def __aenter__(self) -> "SSEClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> int:
        parts = urlsplit(self.url)
        self._reader, self._writer = await asyncio.open_connection(parts.hostname, parts.port)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.0", f"Host: {parts.hostname}:{parts.port}", "Accept: text/event-stream"]
        if self.session:
            lines.append(f"Cookie: sessionid={self.session}")
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        head = await asyncio.wait_for(self._reader.readuntil(b"\r\n\r\n"), 10)
        status_line, *header_lines = head.decode("latin1").split("\r\n")
        self.status = int(status_line.split()[1])
        for line in header_lines:
            if ":" in line:
                key, value = line.split(":", 1)
                self.response_headers[key.strip().lower()] = value.strip()
        return self.status

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def next_event(self, timeout: float = 10.0, *, skip=("stream-open",)) -> Event:
        """The next event (not a comment); raises TimeoutError if none comes in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while "\n\n" in self._buffer:
                block, self._buffer = self._buffer.split("\n\n", 1)
                self._note_id(block)
                event = self._parse(block)
                if event is not None and event.type not in skip:
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("no event in time")
            chunk = await asyncio.wait_for(self._reader.read(65536), remaining)
            if not chunk:
                raise ConnectionError("stream closed")
            self._buffer += chunk.decode()

    async def events_until(self, count: int, timeout: float = 10.0) -> list[Event]:
        return [await self.next_event(timeout) for _ in range(count)]

    async def no_event(self, wait: float) -> bool:
        """True if no event (other than comments) arrives within `wait` seconds."""
        try:
            await self.next_event(wait)
        except TimeoutError:
            return True
        return False

    def _note_id(self, block: str) -> None:
        for line in block.split("\n"):
            if line.startswith("id:"):
                self.last_id = line[3:].removeprefix(" ")

    @staticmethod
    def _parse(block: str) -> Event | None:
        event_type, data, event_id, seen = "message", [], None, False
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            seen = True
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                event_type = value
            elif key == "data":
                data.append(value)
            elif key == "id":
                event_id = value
        return Event(event_type, "\n".join(data), event_id) if seen and (data or event_type != "message") else None
