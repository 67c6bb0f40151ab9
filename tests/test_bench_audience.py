"""bench/audience.py: the reaction table figure 6 reads from a stream page, and the way its
viewers coalesce their requests. If the page gains a reaction the bench would not simulate, or
app.js changes the timing of its read reports, a test here fails: the bench must follow."""

import asyncio
import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from bench import audience
from bench.audience import Page, Reaction, Response, Viewer, parse_page
from lms.livestream.actions import do_create_stream, do_start_stream
from tests.factories import MessageFactory

ROOT = Path(__file__).resolve().parent.parent

# The DOM events the viewers of figure 6 act on; anything else a page triggers on must be a
# person's doing (a click, typing), or the bench has to learn it.
SIMULATED = {"load", "every", "lms:reconnected", "lms:stream-reset", "lms:refresh"}

TAG = re.compile(r"<([a-zA-Z][\w-]*)\s([^>]*)>")
ATTRIBUTE = re.compile(r'([\w:-]+)="([^"]*)"')


def declared_triggers(page_html: str) -> list[dict]:
    """Every trigger of every element, read with regular expressions (not with the bench's
    parser): [{"element", "spec", "method", "url", "swap"}]."""
    found = []
    for position, match in enumerate(TAG.finditer(page_html)):
        attrs = {name: html.unescape(value) for name, value in ATTRIBUTE.findall(match.group(2))}
        if "hx-trigger" not in attrs:
            continue
        method, url = next(((m.upper(), attrs[f"hx-{m}"]) for m in ("get", "post") if f"hx-{m}" in attrs), ("", ""))
        for spec in attrs["hx-trigger"].split(","):
            found.append({"element": attrs.get("id", ""), "spec": spec.strip(), "method": method, "url": url,
                          "swap": attrs.get("hx-swap", "innerHTML")})
    return found


def seconds(spec: str, name: str) -> float:
    match = re.search(rf"\b{name}:(\d+(?:\.\d+)?)(ms|s)\b", spec)
    if not match:
        return 0.0
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


@pytest.fixture
def stream_page(client, course, instructor, member):
    """A live stream with chat and Q&A, three messages in its chat, as a member's page shows it."""
    stream = do_start_stream(do_create_stream(
        course, creator=instructor, title="Lecture", starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1), qa_enabled=True,
    ), actor=instructor)
    messages = [MessageFactory(room=stream.chat_room, author=instructor) for _ in range(3)]
    client.force_login(member)
    response = client.get(reverse("livestream:detail", args=[stream.pk]))
    assert response.status_code == 200
    return stream, messages, response.content.decode()


def test_the_parser_reads_every_trigger_the_stream_page_declares(stream_page):
    stream, messages, page_html = stream_page
    page = parse_page(page_html)
    declared = declared_triggers(page_html)
    assert declared, "the stream page declares no hx-trigger at all"
    expected = []
    for trigger in declared:
        event = trigger["spec"].split()[0]
        if event in audience.USER_EVENTS:
            continue
        expected.append((event, trigger["method"], trigger["url"], seconds(trigger["spec"], "delay"),
                         seconds(trigger["spec"], "throttle"), trigger["swap"]))
    found = [(r.event, r.method, r.url, r.delay, r.throttle, r.swap) for r in page.reactions]
    assert sorted(found) == sorted(expected)
    # Each reaction is one the viewers act on.
    for reaction in page.reactions:
        assert reaction.sse_event or reaction.event in SIMULATED, (
            f"{reaction.element} reacts to {reaction.event!r}, which bench/audience.py does not simulate"
        )
        if reaction.event == "lms:refresh":  # app.js triggers it for the events of data-refresh-on
            assert reaction.refresh_on and set(reaction.refresh_on) <= page.listened
    # What the parser leaves to a person is a person's doing.
    for element, spec in page.ignored:
        assert spec.split()[0] in audience.USER_EVENTS, f"{element}: {spec!r} would be missed by the bench"


def test_the_page_gives_its_stream_csrf_token_and_read_reports(stream_page):
    stream, messages, page_html = stream_page
    page = parse_page(page_html)
    connect = html.unescape(re.search(r'sse-connect="([^"]+)"', page_html).group(1))
    assert page.stream_url == connect
    assert f"channel=stream-{stream.pk}" in page.stream_url and "lastEventId=" in page.stream_url
    assert page.csrf_token and re.search(r'"X-CSRFToken": "' + re.escape(page.csrf_token), page_html)
    read = re.search(r'<ol id="messages"[^>]*data-read-url="([^"]+)"', page_html)
    assert page.read_url == (read.group(1) if read else None)
    assert page.last_message_id == max(m.pk for m in messages)
    # Every event a swap listens for takes part in the read-report timing (htmx:sseMessage).
    swaps = {name.strip() for value in re.findall(r'sse-swap="([^"]+)"', page_html) for name in value.split(",")}
    assert page.sse_swaps == swaps
    assert "message_created" in page.sse_swaps


def test_the_table_lists_each_reaction(stream_page):
    page = parse_page(stream_page[2])
    lines = page.table()
    assert len(lines) == len(page.reactions) + (1 if page.read_url else 0)
    for reaction, line in zip(page.reactions, lines, strict=False):
        assert line.startswith(reaction.event) and reaction.url in line


def test_trigger_modifiers_and_lists():
    page = parse_page(
        '<div id="a" hx-get="/a/" hx-trigger="load, sse:x delay:300ms, sse:y throttle:2s, every 5s" '
        'hx-swap="outerHTML"></div>'
        '<div hx-post="/b/" hx-trigger="lms:reconnected from:body, click[ctrlKey, shiftKey]"></div>'
        '<textarea hx-post="/t/" hx-trigger="input changed throttle:3s"></textarea>'
    )
    table = {(r.event, r.delay, r.throttle, r.every, r.source, r.url) for r in page.reactions}
    assert table == {
        ("load", 0, 0, 0, "", "/a/"), ("sse:x", 0.3, 0, 0, "", "/a/"), ("sse:y", 0, 2.0, 0, "", "/a/"),
        ("every", 0, 0, 5.0, "", "/a/"), ("lms:reconnected", 0, 0, 0, "body", "/b/"),
    }
    assert all(r.replaces_itself for r in page.reactions if r.url == "/a/")
    assert {spec.split()[0].split("[")[0] for _, spec in page.ignored} == {"click", "input"}


def test_read_report_timing_mirrors_app_js():
    """The constants at the top of bench/audience.py say what reportRead() in app.js does: the
    fingerprint of what they were read from still matches, and the period is the file's."""
    source = (ROOT / "static" / "lms" / "app.js").read_text()
    assert "function reportRead(" in source, "reportRead() is gone from app.js: update bench/audience.py"
    assert audience.read_report_fingerprint(source) == audience.READ_REPORT_FINGERPRINT, (
        "reportRead() or the events it runs on changed: set READ_REPORT_MODE and READ_REPORT_SECONDS in "
        "bench/audience.py to what it does now, and READ_REPORT_FINGERPRINT to "
        f"{audience.read_report_fingerprint(source)!r}"
    )
    start = source.index("function reportRead(")
    body = source[start:source.index("\n  }\n", start)]
    delays = []
    for delay in re.findall(r"setTimeout\([\s\S]*?\},\s*(\w+)\)", body):  # a number, or a var set to one
        named = re.search(rf"\b(?:var|let|const)\s+{delay}\s*=\s*(\d+)", source)
        delays.append(int(delay) if delay.isdecimal() else int(named.group(1)) if named else None)
    assert round(audience.READ_REPORT_SECONDS * 1000) in delays
    assert audience.READ_REPORT_MODE in ("debounce", "throttle")


# -- the viewers' coalescing, on an event loop without servers ------------------------------------


class FakeOwner:
    """What a client process gives a viewer: its loop, a pool's port, and the requests it sent."""

    def __init__(self, answer: bytes = b""):
        self.loop = asyncio.get_running_loop()
        self.pool = type("PoolStub", (), {"port": 1})()
        self.tally = audience.Tally()
        self.sent: list[tuple[str, str]] = []
        self.answer = answer

    async def timed_request(self, kind, method, url, headers, body, viewer):
        self.sent.append((method, url if not body else f"{url} {body.decode()}"))
        await asyncio.sleep(0.01)
        return Response(200 if self.answer else 204, {}, self.answer)


def viewer_for(owner, reactions, read_url=None, swaps=()) -> Viewer:
    page = Page(stream_url="/events/", csrf_token="t", read_url=read_url, reactions=list(reactions),
                sse_swaps=set(swaps))
    return Viewer(owner, 0, "s", "c", "/livestream/1/", page)


def test_delay_restarts_and_throttle_drops():
    async def scenario():
        owner = FakeOwner()
        viewer = viewer_for(owner, [
            Reaction("sse:a", "GET", "/debounced/", "#a", delay=0.3),
            Reaction("sse:b", "GET", "/throttled/", "#b", throttle=1.0),
        ])
        viewer.start()
        for _ in range(5):
            viewer.on_event("a", b"")
            viewer.on_event("b", b"")
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.5)
        viewer.stop()
        return owner.sent

    # (Margins wide enough for a busy machine: a stall of 0.3 s would split the burst.)
    sent = asyncio.run(scenario())
    assert sent.count(("GET", "/debounced/")) == 1
    assert sent.count(("GET", "/throttled/")) == 1


def test_an_element_that_loads_itself_again_loops_within_the_bound(monkeypatch):
    monkeypatch.setattr(audience, "LOOP_MAX_PER_SECOND", 20.0)

    async def scenario():
        again = b'<div id="u" hx-get="/u/" hx-trigger="load" hx-swap="outerHTML"></div>'
        owner = FakeOwner(answer=again)
        viewer = viewer_for(owner, [Reaction("load", "GET", "/u/", "#u", swap="outerHTML")])
        viewer.start()
        await asyncio.sleep(0.5)
        viewer.stop()
        return owner.sent

    sent = asyncio.run(scenario())
    assert 3 <= len(sent) <= 12  # a loop, at most 20 a second


def test_regions_refresh_at_most_once_a_period_and_after_the_last_event():
    page = parse_page('<div id="stats" hx-get="/stats/" hx-trigger="lms:refresh" data-refresh-on="a b" '
                      'data-refresh-ms="200"></div><div sse-swap="a,b,c" hx-swap="none"></div>')
    (reaction,) = page.reactions
    assert (reaction.event, reaction.refresh_on, reaction.refresh_every) == ("lms:refresh", ("a", "b"), 0.2)

    async def scenario():
        owner = FakeOwner()
        viewer = viewer_for(owner, page.reactions, swaps=page.sse_swaps)
        viewer.start()
        for i in range(16):  # an event every 30 ms for 0.48 s, then quiet
            viewer.on_event("ab"[i % 2], b"")
            viewer.on_event("c", b"")
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.5)
        viewer.stop()
        return owner.sent

    sent = asyncio.run(scenario())
    assert 2 <= len(sent) <= 4 and set(sent) == {("GET", "/stats/")}  # at once, every 0.2 s, after the last


def test_read_reports_follow_app_js(monkeypatch):
    monkeypatch.setattr(audience, "READ_REPORT_SECONDS", 0.15)

    async def scenario(mode):
        monkeypatch.setattr(audience, "READ_REPORT_MODE", mode)
        owner = FakeOwner()
        viewer = viewer_for(owner, [], read_url="/chat/1/read/", swaps={"message_created"})
        viewer.start()
        for pk in range(1, 21):  # a message every 30 ms for 0.6 s, then quiet
            viewer.on_event("message_created", f'<li id="message-{pk}">'.encode())
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.5)
        viewer.stop()
        return owner.sent

    debounced = asyncio.run(scenario("debounce"))
    assert debounced == [("POST", "/chat/1/read/ last_id=20")]  # once traffic stops, never during it
    throttled = asyncio.run(scenario("throttle"))
    assert 2 <= len(throttled) <= 6 and throttled[-1] == ("POST", "/chat/1/read/ last_id=20")
