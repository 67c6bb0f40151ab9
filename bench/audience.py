"""Figure 6's viewers: pages of a live stream that react to events as the real page does.

The reactions are not written down here: each viewer reads its own stream page once and
`parse_page` builds its reaction table from the HTML, so the bench follows the templates when
they change. What the HTML cannot say (the timing of the read reports in `static/lms/app.js`)
is mirrored by the constants below; `tests/test_bench_audience.py` checks them against the file.

What a page does, and how a viewer here does the same:
- `hx-trigger="sse:<event>"` (with `delay:` / `throttle:`): on that event, the element's request
  (`hx-get` / `hx-post`), coalesced as htmx does: `delay:` restarts on each event (debounce),
  `throttle:` sends the first and drops the rest for its period; a busy element queues one more
  request (htmx's default `queue last`).
- `load`: once when the page opens (or when a pushed fragment that declares it is swapped in);
  and again each time an answer replaces the element
  (`hx-swap="outerHTML"`) with one whose trigger names `load` again (a request loop; bounded
  here by `LOOP_MAX_PER_SECOND` per viewer and by the connection pool).
- `lms:refresh` on an element with `data-refresh-on="<event> ..."`: app.js's coalesced
  re-fetch of a region (`REFRESH_DEFAULT_SECONDS`, or the element's `data-refresh-ms`).
- `every Ns`: a poll. `lms:reconnected from:body`: after a reconnect (the bench's streams do
  not reconnect during a run; a dropped stream is counted). `lms:stream-reset from:body`: on
  the `stream-reset` event.
- read reports: when the page has `#messages[data-read-url]`, as `reportRead()` in app.js.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

# -- mirrored from static/lms/app.js, reportRead() ------------------------------------------------
# "debounce": each swap (any event a listener takes, any swapped answer) restarts the timer, and
# the report goes READ_REPORT_SECONDS after the last one; the function returns early (timer left
# alone) when no message newer than the last report is shown.
# "throttle": at most one report every READ_REPORT_SECONDS while messages arrive, and one
# READ_REPORT_SECONDS after the last.
READ_REPORT_MODE = "throttle"
READ_REPORT_SECONDS = 2.0
# What the two lines above were read from: `read_report_fingerprint()` of app.js. When it no
# longer matches, tests/test_bench_audience.py fails: read reportRead() again, set the mode and
# the period to what it does now, and copy the new fingerprint here.
READ_REPORT_FINGERPRINT = "a2449b2514b2d2bd"
# Whether the page counts the messages it opened with as read (no report for them): false in
# the reportRead() above (`reported` starts at 0), true where it starts at the newest shown.
READ_REPORT_OPENING_IS_READ = True

# Regions that app.js re-fetches when events arrive (`data-refresh-on="event ..."` with
# `hx-trigger="lms:refresh"`, where the page has them): at most one every `data-refresh-ms`
# while the events come (the first at once), and one after the last. The default period:
REFRESH_DEFAULT_SECONDS = 3.0

# A page whose element re-triggers itself sends requests as fast as the answers come (one idle
# tab sent ~22 a second, issue 13). The bench lets each viewer's loop run at most this fast, so
# that the loop is bounded; the connection pool bounds it further.
LOOP_MAX_PER_SECOND = 25.0



def read_report_fingerprint(app_js: str) -> str:
    """A digest of reportRead() in app.js and of the lines that call it (and the events they
    run on), blanks squeezed: it changes when the read reports' timing may have changed."""
    import hashlib

    start = app_js.index("function reportRead(")
    body = " ".join(app_js[start:app_js.index("\n  }\n", start)].split())
    lines = app_js.splitlines()
    calls = []
    for i, line in enumerate(lines):
        if ("reportRead" in line or "refresh" in line) and "function reportRead(" not in line:
            calls += [lines[i - 1].strip(), line.strip()] if "refresh" in line else [line.strip()]
    return hashlib.sha256((body + "\n" + "\n".join(calls)).encode()).hexdigest()[:16]


MESSAGE_ID = re.compile(rb'id="message-(\d+)"')


# -- the reaction table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reaction:
    """One trigger of one element: on `event`, send `method url` (coalesced by delay/throttle)."""

    event: str  # "sse:<name>", "load", "every", or a DOM event such as "lms:reconnected"
    method: str
    url: str
    element: str  # the element's id, or its tag and position, for reports
    swap: str = "innerHTML"
    delay: float = 0.0
    throttle: float = 0.0
    every: float = 0.0
    source: str = ""  # from:<source>
    target: str = ""
    refresh_on: tuple[str, ...] = ()  # lms:refresh: the events app.js re-fetches the region on
    refresh_every: float = 0.0

    @property
    def sse_event(self) -> str | None:
        return self.event[4:] if self.event.startswith("sse:") else None

    @property
    def replaces_itself(self) -> bool:
        return self.swap.split()[0] == "outerHTML" and not self.target


@dataclass
class Page:
    stream_url: str | None = None
    csrf_token: str = ""
    read_url: str | None = None
    last_message_id: int = 0
    reactions: list[Reaction] = field(default_factory=list)
    sse_swaps: set[str] = field(default_factory=set)  # events an sse-swap element takes
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (element, trigger) a user starts

    @property
    def listened(self) -> set[str]:
        """Every event the page's SSE listeners take (each fires htmx:sseMessage)."""
        return self.sse_swaps | {r.sse_event for r in self.reactions if r.sse_event}

    def table(self) -> list[str]:
        """The reactions, one line each (printed by the bench and checked by the test)."""
        lines = []
        for r in self.reactions:
            how = f"delay {r.delay:g}s" if r.delay else f"throttle {r.throttle:g}s" if r.throttle else "at once"
            if r.every:
                how = f"every {r.every:g}s"
            lines.append(f"{r.event}{' from:' + r.source if r.source else ''} -> {r.method} {r.url} "
                         f"({how}, swap {r.swap}) [{r.element}]")
        if self.read_url:
            lines.append(f"swap -> POST {self.read_url} ({READ_REPORT_MODE} {READ_REPORT_SECONDS:g}s, app.js)")
        return lines


# What a person does, not an event: the bench does not type, click or submit.
USER_EVENTS = {"click", "submit", "input", "change", "keyup", "keydown", "focus", "blur", "revealed", "intersect",
               "mouseenter", "mouseleave"}


def parse_interval(text: str) -> float:
    text = text.strip()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    if text.endswith("m"):
        return float(text[:-1]) * 60
    return float(text) / 1000  # htmx reads a bare number as milliseconds


def split_triggers(value: str) -> list[str]:
    """htmx's trigger list: comma-separated, commas inside [filters] do not split."""
    parts, depth, current = [], 0, []
    for char in value:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_trigger(spec: str) -> dict:
    tokens = re.sub(r"\[[^\]]*\]", "", spec).split()
    out = {"event": tokens[0], "delay": 0.0, "throttle": 0.0, "every": 0.0, "source": ""}
    rest = tokens[1:]
    if out["event"] == "every" and rest:
        out["every"] = parse_interval(rest[0])
        rest = rest[1:]
    for token in rest:
        name, _, value = token.partition(":")
        if name in ("delay", "throttle") and value:
            out[name] = parse_interval(value)
        elif name == "from" and value:
            out["source"] = value
    return out


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.count = 0
        self.in_messages = 0  # depth inside #messages
        self.stack: list[str] = []

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def handle_starttag(self, tag, attrs) -> None:
        a = {k: (v or "") for k, v in attrs}
        self.count += 1
        page = self.page
        if tag == "body" and "hx-headers" in a:
            match = re.search(r'"X-CSRFToken"\s*:\s*"([^"]*)"', a["hx-headers"])
            if match:
                page.csrf_token = match.group(1)
        if "sse-connect" in a and page.stream_url is None:
            page.stream_url = a["sse-connect"]
        if "sse-swap" in a:
            page.sse_swaps |= {name.strip() for name in a["sse-swap"].split(",") if name.strip()}
        if a.get("id") == "messages" and "data-read-url" in a:
            page.read_url = a["data-read-url"]
        if self.in_messages and a.get("id", "").startswith("message-"):
            tail = a["id"][len("message-"):]
            if tail.isdecimal():
                page.last_message_id = max(page.last_message_id, int(tail))
        if "hx-trigger" in a:
            self.add_reactions(tag, a)
        if tag not in self.VOID:
            self.stack.append(tag)
            if self.in_messages:
                self.in_messages += 1
            elif a.get("id") == "messages":
                self.in_messages = 1

    def handle_endtag(self, tag) -> None:
        if tag in self.VOID or not self.stack:
            return
        # Close up to the matching tag (HTML lets some end tags be implied).
        while self.stack:
            top = self.stack.pop()
            if self.in_messages:
                self.in_messages -= 1
            if top == tag:
                break

    def add_reactions(self, tag: str, a: dict) -> None:
        element = f"#{a['id']}" if a.get("id") else f"{tag}[{self.count}]"
        method, url = next(((m.upper(), a[f"hx-{m}"]) for m in ("get", "post", "put", "patch", "delete")
                            if f"hx-{m}" in a), ("", ""))
        for spec in split_triggers(a["hx-trigger"]):
            trigger = parse_trigger(spec)
            name = trigger["event"]
            if name in USER_EVENTS or not url:
                self.page.ignored.append((element, spec))
                continue
            self.page.reactions.append(Reaction(
                event=name, method=method, url=url, element=element, swap=a.get("hx-swap", "innerHTML"),
                delay=trigger["delay"], throttle=trigger["throttle"], every=trigger["every"],
                source=trigger["source"], target=a.get("hx-target", ""),
                refresh_on=tuple(a.get("data-refresh-on", "").split()) if name == "lms:refresh" and a.get("id") else (),
                refresh_every=(int(a.get("data-refresh-ms") or 0) / 1000 or REFRESH_DEFAULT_SECONDS)
                if name == "lms:refresh" else 0.0,
            ))


def parse_page(html: str) -> Page:
    """The reaction table of a page (or of a fragment an answer swaps in)."""
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page


# -- a pool of keep-alive HTTP/1.1 connections, one per client process ------------------------------


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body


class Pool:
    """At most `size` keep-alive connections to 127.0.0.1:port; requests wait their turn (FIFO)."""

    IDLE_LIMIT = 1.0  # the servers close idle keep-alive connections after 2 s

    def __init__(self, port: int, size: int, timeout: float = 30.0):
        self.port, self.size, self.timeout = port, size, timeout
        self.idle: list = []
        self.total = 0
        self.waiters: asyncio.Queue | None = None
        self.semaphore = asyncio.Semaphore(size)

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"", skip=None) -> Response | None:
        """One request and its answer; None, unsent, if `skip()` says so once a connection is free."""
        async with self.semaphore:
            if skip is not None and skip():
                return None
            async with asyncio.timeout(self.timeout):
                conn = await self._connection()
                try:
                    response = await self._exchange(conn, method, path, headers, body)
                except BaseException:
                    conn[1].transport.abort()
                    raise
                if response.headers.get("connection", "").lower() != "close":
                    self.idle.append((conn[0], conn[1], time.monotonic()))
                else:
                    conn[1].transport.abort()
                return response

    async def _connection(self):
        while self.idle:
            reader, writer, used = self.idle.pop()
            if time.monotonic() - used < self.IDLE_LIMIT and not writer.transport.is_closing():
                return reader, writer
            writer.transport.abort()
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def _exchange(self, conn, method, path, headers, body) -> Response:
        reader, writer = conn
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        head = await reader.readuntil(b"\r\n\r\n")
        first, *rest = head.decode("latin-1").split("\r\n")
        status = int(first.split(" ", 2)[1])
        out: dict = {}
        for line in rest:
            name, _, value = line.partition(":")
            if name:
                out.setdefault(name.strip().lower(), []).append(value.strip())
        flat = {k: v[-1] for k, v in out.items()}
        flat["set-cookie"] = out.get("set-cookie", [])
        if "content-length" in flat:
            data = await reader.readexactly(int(flat["content-length"]))
        elif flat.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append((await reader.readexactly(size + 2))[:-2])
                if not size:
                    break
            data = b"".join(chunks)
        else:
            data = b""
        return Response(status, flat, data)

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.transport.abort()
        self.idle.clear()


# -- a viewer: one page, its stream, its reactions ----------------------------------------------------


class Tally:
    """What the viewers of one client process did during a run."""

    def __init__(self) -> None:
        self.requests = 0
        self.by_kind: dict[str, int] = {}
        self.status: dict[int, int] = {}
        self.failed = 0
        self.ms: list[float] = []
        self.loop_capped = 0

    def as_dict(self) -> dict:
        return {"requests": self.requests, "by_kind": self.by_kind, "status": self.status, "failed": self.failed,
                "ms": self.ms, "loop_capped": self.loop_capped}


class Viewer:
    """One viewer's page: its reaction table and the state htmx and app.js keep for it."""

    def __init__(self, owner, idx: int, session: str, csrf_cookie: str, page_path: str, page: Page):
        self.owner = owner  # the client process (bench.client.Worker)
        self.idx = idx
        self.page = page
        self.page_path = page_path
        self.cookie = f"sessionid={session}; csrftoken={csrf_cookie}"
        self.reacting = False
        self.handles: list = []  # timers to cancel when the reactions stop
        self.elements: dict = {}  # element -> {"timer", "throttled_until", "busy", "queued"}
        self.last_id = page.last_message_id
        self.reported = page.last_message_id if READ_REPORT_OPENING_IS_READ else 0
        self.refreshes: dict[str, dict] = {}  # element -> {"last", "timer"} (app.js's `refreshes`)
        self.read_timer = None
        self.read_id = 0
        self.last_loop = 0.0
        self.by_event: dict[str, list[Reaction]] = {}
        for reaction in page.reactions:
            self.by_event.setdefault(reaction.event, []).append(reaction)
        self.listened = page.listened

    # -- switching on and off -------------------------------------------------------------------

    def start(self) -> None:
        """The page as it opens: `load` triggers, polls, and app.js's first reportRead()."""
        self.reacting = True
        for reaction in self.by_event.get("load", []):
            self.trigger(reaction)
        for reaction in self.by_event.get("every", []):
            self.poll(reaction)
        self.swapped()

    def stop(self) -> None:
        self.reacting = False
        for handle in self.handles:
            handle.cancel()
        self.handles.clear()
        for state in self.elements.values():
            if state.get("timer"):
                state["timer"].cancel()
            state["queued"] = None
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None
        for due in self.refreshes.values():
            due["timer"] = None  # (cancelled with the handles)

    # -- events --------------------------------------------------------------------------------

    def on_event(self, name: str, data: bytes) -> None:
        if name == "message_created" and "message_created" in self.page.sse_swaps:
            match = MESSAGE_ID.search(data)
            if match:
                self.last_id = max(self.last_id, int(match.group(1)))
        if not self.reacting:
            return
        if name in self.page.sse_swaps and b"hx-trigger" in data:
            # A pushed fragment with triggers of its own: htmx processes it as it is swapped in.
            for reaction in parse_page(data.decode("utf-8", "replace")).reactions:
                if reaction.event == "load":
                    self.trigger(reaction)
        if name == "stream-reset":
            for reaction in self.by_event.get("lms:stream-reset", []):
                self.trigger(reaction)
        for reaction in self.by_event.get(f"sse:{name}", []):
            self.trigger(reaction)
        if name in self.listened:
            self.refresh_regions(name)
            self.swapped()

    def refresh_regions(self, name: str) -> None:
        """app.js: on an event a region names in data-refresh-on, `lms:refresh` on it, at most
        once per its period while the events come (the first at once) and once after the last."""
        for reaction in self.by_event.get("lms:refresh", []):
            if name not in reaction.refresh_on:
                continue
            due = self.refreshes.setdefault(reaction.element, {"last": -1e9, "timer": None})
            if due["timer"] is not None:
                continue
            loop = self.owner.loop

            def fire(reaction=reaction, due=due) -> None:
                due["timer"] = None
                due["last"] = loop.time()
                if self.reacting:
                    self.trigger(reaction)

            due["timer"] = loop.call_later(max(0.0, due["last"] + reaction.refresh_every - loop.time()), fire)
            self.handles.append(due["timer"])

    def poll(self, reaction: Reaction) -> None:
        def tick() -> None:
            if self.reacting:
                self.trigger(reaction)
                self.handles.append(self.owner.loop.call_later(reaction.every, tick))

        self.handles.append(self.owner.loop.call_later(reaction.every, tick))

    def trigger(self, reaction: Reaction) -> None:
        """An element's trigger fired: htmx's delay (debounce) and throttle, then the request."""
        state = self.elements.setdefault(reaction.element, {"timer": None, "throttled_until": 0.0, "busy": False,
                                                            "queued": None})
        loop = self.owner.loop
        if reaction.throttle:
            now = loop.time()
            if now < state["throttled_until"]:
                return
            state["throttled_until"] = now + reaction.throttle
            self.issue(reaction)
        elif reaction.delay:
            if state["timer"] is not None:
                state["timer"].cancel()
            state["timer"] = loop.call_later(reaction.delay, self.issue, reaction)
        else:
            self.issue(reaction)

    def issue(self, reaction: Reaction) -> None:
        """htmx's default sync: one request per element at a time, and the last trigger queued."""
        if not self.reacting:
            return
        state = self.elements[reaction.element]
        state["timer"] = None
        if state["busy"]:
            state["queued"] = reaction
            return
        state["busy"] = True
        self.owner.loop.create_task(self.request(reaction, state))

    async def request(self, reaction: Reaction, state: dict) -> None:
        headers = {
            "Cookie": self.cookie, "HX-Request": "true", "HX-Current-URL": f"http://127.0.0.1:{self.owner.pool.port}{self.page_path}",
            "X-CSRFToken": self.page.csrf_token, "Accept": "*/*",
        }
        if reaction.element.startswith("#"):
            headers["HX-Trigger"] = reaction.element[1:]
            headers["HX-Target"] = reaction.target.lstrip("#") or reaction.element[1:]
        body = b""
        if reaction.method != "GET":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://127.0.0.1:{self.owner.pool.port}"
        response = await self.owner.timed_request(f"{reaction.method} {reaction.url.split('?')[0]}",
                                                  reaction.method, reaction.url, headers, body, self)
        state["busy"] = False
        if not self.reacting:
            return
        if response is not None and 200 <= response.status < 300 and response.status != 204:
            if reaction.swap.split()[0] != "none":
                self.swapped()
            if reaction.replaces_itself:
                # The answer replaces the element: its queue goes with it, and a trigger of the
                # new element that names `load` fires as it is swapped in.
                state["queued"] = None
                again = [r for r in parse_page(response.body.decode("utf-8", "replace")).reactions
                         if r.event == "load"]
                for new in again:
                    self.loop_again(new)
                return
        queued, state["queued"] = state["queued"], None
        if queued is not None:
            self.issue(queued)

    def loop_again(self, reaction: Reaction) -> None:
        wait = self.last_loop + 1 / LOOP_MAX_PER_SECOND - self.owner.loop.time()
        if wait > 0:
            self.owner.tally.loop_capped += 1
            self.handles.append(self.owner.loop.call_later(wait, self.loop_again, reaction))
            return
        self.last_loop = self.owner.loop.time()
        self.trigger(reaction)

    # -- app.js: reportRead() ------------------------------------------------------------------

    def swapped(self) -> None:
        """htmx:sseMessage / afterSwap / afterSettle: app.js runs reportRead()."""
        if not self.page.read_url or not self.reacting:
            return
        if not self.last_id or self.last_id <= self.reported:
            return
        loop = self.owner.loop
        if READ_REPORT_MODE == "debounce":
            if self.read_timer is not None:
                self.read_timer.cancel()
            self.read_id = self.last_id
            self.read_timer = loop.call_later(READ_REPORT_SECONDS, self.send_read)
        elif self.read_timer is None:
            self.read_timer = loop.call_later(READ_REPORT_SECONDS, self.send_read)

    def send_read(self) -> None:
        self.read_timer = None
        if not self.reacting:
            return
        last = self.read_id if READ_REPORT_MODE == "debounce" else self.last_id
        self.reported = max(self.reported, last)
        body = f"last_id={last}".encode()
        headers = {"Cookie": self.cookie, "X-CSRFToken": self.page.csrf_token,
                   "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
                   "Origin": f"http://127.0.0.1:{self.owner.pool.port}", "Accept": "*/*"}
        self.owner.loop.create_task(
            self.owner.timed_request("read report", "POST", self.page.read_url, headers, body, self)
        )


# -- the client process's side (mixed into bench.client.Worker) --------------------------------------

EVENT_NAME = re.compile(rb"(?m)^event: ?([^\r\n]*)")
MARK = b"BQ"


class AudienceWorker:
    """Commands of a client process for figure 6: open viewers, switch reactions, count."""

    def audience_init(self) -> None:
        self.viewers: dict[int, Viewer] = {}
        self.pool: Pool | None = None
        self.tally = Tally()
        self.events = 0
        self.inflight = 0

    async def timed_request(self, kind: str, method: str, url: str, headers: dict, body: bytes,
                            viewer: Viewer) -> Response | None:
        """A page's request; not sent if the reactions were switched off while it waited for a
        connection (a run's requests must not spill into the next run)."""
        # Counted when sent, in the run it was sent in (its answer too, whenever it comes).
        tally = self.tally

        def skip() -> bool:  # a connection is free: send, and count it, unless the page stopped
            nonlocal tally
            if not viewer.reacting:
                return True
            tally = self.tally
            tally.requests += 1
            tally.by_kind[kind] = tally.by_kind.get(kind, 0) + 1
            return False

        self.inflight += 1
        started = time.monotonic_ns()
        try:
            response = await self.pool.request(method, url, headers, body, skip=skip)
            if response is None:
                return None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            tally.failed += 1
            return None
        finally:
            self.inflight -= 1
        tally.status[response.status] = tally.status.get(response.status, 0) + 1
        tally.ms.append((time.monotonic_ns() - started) / 1e6)
        return response

    async def audience_open(self, port: int, page_path: str, items: list, pool_size: int, concurrency: int,
                            timeout: float, deadline: float) -> dict:
        """Per (idx, session, csrf secret): GET the page, read its reactions, open its stream."""
        if self.pool is None or self.pool.port != port:
            self.pool = Pool(port, pool_size)
        semaphore = asyncio.Semaphore(concurrency)
        failures: dict[str, int] = {}
        opened, table = [], None
        give_up = self.loop.time() + deadline

        def fail(kind: str) -> None:
            failures[kind] = failures.get(kind, 0) + 1

        async def one(idx: int, session: str, secret: str) -> None:
            nonlocal table
            cookie = f"sessionid={session}; csrftoken={secret}"
            try:
                async with asyncio.timeout_at(give_up), semaphore, asyncio.timeout(timeout):
                    response = await self.pool.request("GET", page_path, {"Cookie": cookie, "Accept": "text/html"})
                    if response.status != 200:
                        return fail(f"page HTTP {response.status}")
                    page = parse_page(response.body.decode("utf-8", "replace"))
                    if not page.stream_url:
                        return fail("page without sse-connect")
                    request = (
                        f"GET {page.stream_url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
                        f"Cache-Control: no-cache\r\nCookie: {cookie}\r\n\r\n"
                    ).encode()
                    from bench.client import Stream

                    stream = Stream(self, idx, request)
                    try:
                        await self.loop.create_connection(lambda: stream, "127.0.0.1", port)
                        ok = await stream.opened
                    except BaseException:
                        stream.close()
                        raise
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
                return fail(type(error).__name__)
            if not ok or stream.transport is None or stream.transport.is_closing():
                return fail(f"stream HTTP {stream.status}" if stream.status else "stream closed")
            stream.hook = self.audience_event
            self.streams[idx] = stream
            self.viewers[idx] = Viewer(self, idx, session, secret, page_path, page)
            opened.append((idx, stream.port))
            if table is None:
                table = {"reactions": page.table(), "ignored": [" ".join(i) for i in page.ignored],
                         "stream_url": page.stream_url}

        await asyncio.gather(*(one(*item) for item in items))
        return {"opened": opened, "failures": failures, "table": table}

    def audience_event(self, stream, buf: bytes, start: int, end: int, now: int) -> None:
        self.events += 1
        match = EVENT_NAME.search(buf, start, end)
        name = match.group(1).decode("utf-8", "replace").strip() if match else "message"
        data = buf[start:end]
        if name == "message_created":
            mark = buf.find(MARK, start, end)
            if mark >= 0:
                stream.event(buf, mark, end, now)
        else:
            self.other_events += 1
        viewer = self.viewers.get(stream.idx)
        if viewer is not None:
            viewer.on_event(name, data)

    def audience_react(self, on: bool) -> dict:
        for viewer in self.viewers.values():
            if on and not viewer.reacting:
                viewer.start()
            elif not on and viewer.reacting:
                viewer.stop()
        return {"inflight": self.inflight}

    def audience_close(self) -> dict:
        for idx in list(self.viewers):
            self.viewers.pop(idx).stop()
            stream = self.streams.pop(idx, None)
            if stream is not None:
                stream.close()
        if self.pool is not None:
            self.pool.close()
        return {}
