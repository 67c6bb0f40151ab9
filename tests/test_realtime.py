"""lms.realtime against a real server process: access, live delivery, replay, limits."""

import asyncio

import pytest
from django.db import transaction

from lms.realtime import channel, event_stream_url, last_event_id, publish, publish_fragment_on_commit
from lms.realtime.hub import run_db
from tests.conftest import run
from tests.sse import SSEClient

pytestmark = pytest.mark.django_db(transaction=True)


def stream(server, *channels, last=None):
    query = "&".join(f"channel={c}" for c in channels)
    if last is not None:
        query += f"&lastEventId={last}"
    return f"{server.url}/events/?{query}"


def test_stranger_is_refused_the_channel_and_gets_no_events(app_server, course, stranger, session_for):
    stranger_key = session_for(stranger)
    name = channel("course", course.pk)

    async def scenario():
        async with SSEClient(stream(app_server, name), session=stranger_key) as client:
            assert client.status == 403
            event = await client.next_event(5)
            assert event.type == "stream-error"
            assert event.json() == {
                "condition": "forbidden",
                "text": f"Permission denied to channels: {name}",
                "channels": [name],
            }
            with pytest.raises(ConnectionError):
                await client.next_event(2)

    publish(name, "secret", "<p>members only</p>")
    run(scenario())


def test_anonymous_visitor_is_refused(app_server, course):
    async def scenario():
        async with SSEClient(stream(app_server, channel("course", course.pk))) as client:
            assert client.status == 403

    run(scenario())


def test_one_refused_channel_refuses_the_whole_stream(app_server, course, member, session_for):
    member_key = session_for(member)
    async def scenario():
        url = stream(app_server, channel("course", course.pk), channel("user", member.pk + 1000))
        async with SSEClient(url, session=member_key) as client:
            assert client.status == 403
            assert (await client.next_event(5)).json()["channels"] == [f"user-{member.pk + 1000}"]

    run(scenario())


@pytest.mark.parametrize(
    "query",
    ["", "channel=course-1&lastEventId=course-1:x", "channel=course-1&lastEventId=nonsense",
     "&".join(f"channel=course-{n}" for n in range(1, 34)),
     # More query parameters than Django reads (TooManyFieldsSent).
     "channel=course-1&" + "&".join(f"x{n}=1" for n in range(1001)),
     # Invalid UTF-8, NUL bytes, a trailing newline and oversized values.
     "channel=course-1%FF", "channel=%FF%FE", "channel=course-1&lastEventId=course-1:1%FF",
     "channel=course-1%00", "channel=course-1&lastEventId=course-1:%00", "channel=course-1%0A",
     "channel=course-" + "1" * 5000, "channel=course-1&lastEventId=course-1:" + "9" * 30,
     "channel=course-1&lastEventId=" + "course-1:1," * 1000],
    ids=lambda query: query[:40],
)
def test_malformed_requests_get_400(app_server, member, session_for, query):
    member_key = session_for(member)
    async def scenario():
        async with SSEClient(f"{app_server.url}/events/?{query}", session=member_key) as client:
            assert client.status == 400
            assert (await client.next_event(5)).json()["condition"] == "bad-request"

    run(scenario())


def test_a_channel_name_with_a_trailing_newline_is_malformed():
    from lms.realtime.channels import is_well_formed, parse_channel

    assert parse_channel("course-1") == ("course", 1)
    assert parse_channel("course-1\n") is None
    assert not is_well_formed("course-1\n")


def test_unknown_channel_kind_is_refused(app_server, member, session_for):
    member_key = session_for(member)
    async def scenario():
        async with SSEClient(stream(app_server, "secret-1"), session=member_key) as client:
            assert client.status == 403

    run(scenario())


def test_member_receives_a_fragment_published_by_another_process(app_server, course, member, session_for):
    member_key = session_for(member)
    name = channel("course", course.pk)

    async def scenario():
        async with SSEClient(stream(app_server, name), session=member_key) as client:
            assert client.status == 200
            assert client.response_headers["content-type"].startswith("text/event-stream")
            assert (await client.next_event(5, skip=())).type == "stream-open"
            await run_db(publish, name, "note_created", '<li id="note-1">Hi\nthere</li>')
            event = await client.next_event(10)
            assert (event.type, event.data, event.id) == ("note_created", '<li id="note-1">Hi\nthere</li>', f"{name}:1")

    run(scenario())


def test_missed_events_are_replayed_from_the_last_event_id_header(app_server, course, member, session_for):
    member_key = session_for(member)
    name = channel("course", course.pk)
    publish(name, "n", "one")
    seen = last_event_id([name])
    publish(name, "n", "two")
    publish(name, "n", "three")

    async def scenario():
        url = stream(app_server, name)
        async with SSEClient(url, session=member_key, headers={"Last-Event-ID": seen}) as client:
            events = await client.events_until(2)
            assert [(e.data, e.id) for e in events] == [("two", f"{name}:2"), ("three", f"{name}:3")]
            assert await client.no_event(1)

    assert seen == f"{name}:1"
    run(scenario())


def test_missed_events_are_replayed_from_the_last_event_id_parameter(app_server, course, member, session_for):
    member_key = session_for(member)
    name = channel("course", course.pk)
    url = event_stream_url([name])  # what a page renders, before anything happens
    publish(name, "n", "while away 1")
    publish(name, "n", "while away 2")

    async def scenario():
        async with SSEClient(app_server.url + url, session=member_key) as client:
            assert [e.data for e in await client.events_until(2)] == ["while away 1", "while away 2"]

    run(scenario())


def test_the_header_wins_over_a_stale_parameter(app_server, course, member, session_for):
    member_key = session_for(member)
    name = channel("course", course.pk)
    stale = last_event_id([name])
    publish(name, "n", "one")
    newer = last_event_id([name])
    publish(name, "n", "two")

    async def scenario():
        url = stream(app_server, name, last=stale)
        async with SSEClient(url, session=member_key, headers={"Last-Event-ID": newer}) as client:
            assert (await client.next_event(5)).data == "two"

    run(scenario())


def test_a_gap_older_than_storage_gets_stream_reset(app_server, course, member, session_for):
    member_key = session_for(member)
    name = channel("course", course.pk)
    publish(name, "n", "one")

    async def scenario():
        url = stream(app_server, name, last=f"{name}:999")
        async with SSEClient(url, session=member_key) as client:
            event = await client.next_event(5)
            assert event.type == "stream-reset"
            assert event.json() == {"channels": [name]}
            assert event.id == f"{name}:1"

    run(scenario())


def test_a_burst_arrives_whole_in_order_without_duplicates(app_server, course, member, session_for):
    member_key = session_for(member)
    name = channel("course", course.pk)

    def burst():
        for n in range(60):
            publish(name, "n", str(n))

    async def scenario():
        async with SSEClient(stream(app_server, name), session=member_key) as client:
            await client.next_event(5, skip=())
            await run_db(burst)
            events = await client.events_until(60, timeout=15)
            assert [e.data for e in events] == [str(n) for n in range(60)]
            assert [e.id for e in events] == [f"{name}:{n}" for n in range(1, 61)]
            assert await client.no_event(1)

    run(scenario())


def test_a_rolled_back_transaction_publishes_nothing(sent_events, course):
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_fragment_on_commit(channel("course", course.pk), "x", "home.html#announcement", {})
        raise RuntimeError("roll back")
    assert sent_events == []


def test_a_user_may_hold_ten_streams_and_no_more(app_server, member, session_for):
    name = channel("user", member.pk)
    key = session_for(member)

    async def scenario():
        clients = [SSEClient(stream(app_server, name), session=key) for _ in range(10)]
        for client in clients:
            assert await client.connect() == 200
        extra = SSEClient(stream(app_server, name), session=key)
        assert await extra.connect() == 429
        assert extra.response_headers["retry-after"] == "30"
        assert (await extra.next_event(5)).json()["condition"] == "too-many-streams"
        await extra.close()
        await clients[0].close()
        await asyncio.sleep(0.3)
        again = SSEClient(stream(app_server, name), session=key)
        assert await again.connect() == 200
        for client in [again, *clients[1:]]:
            await client.close()

    run(scenario())


def test_keepalive_comments_flow_while_idle(app_server, member, session_for):
    member_key = session_for(member)
    async def scenario():
        async with SSEClient(stream(app_server, channel("user", member.pk)), session=member_key) as client:
            await client.next_event(5, skip=())
            chunk = await asyncio.wait_for(client._reader.read(100), 5)  # REALTIME_KEEPALIVE_SECONDS=2
            assert chunk == b":\n\n"

    run(scenario())


# --- storage ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_appended_events_are_numbered_per_channel_from_one_and_replay_from_zero():
    from django_eventstream.models import Event

    from lms.realtime.storage import current_ids, read_since

    ids = [publish("course-1", "n", str(n)) for n in range(3)] + [publish("course-2", "n", "other")]

    assert ids == [1, 2, 3, 1]
    assert current_ids(["course-1", "course-2", "course-3"]) == {"course-1": 3, "course-2": 1, "course-3": 0}
    # The placeholder at 0 lets a page that saw nothing yet resume from 0.
    assert Event.objects.filter(eid=0).count() == 2
    events, current, reset = read_since({"course-1": 0}, 100)["course-1"]
    assert ([e.data for e in events], current, reset) == (["0", "1", "2"], 3, False)
    assert read_since({"course-1": 2}, 100)["course-1"][0][0].data == "2"


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_get_distinct_ids_in_commit_order():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections
    from django_eventstream.models import Event

    def append(n):
        try:
            return publish("course-7", "n", str(n))
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(append, range(40)))

    assert sorted(ids) == list(range(1, 41))
    stored = Event.objects.filter(channel="course-7", eid__gt=0).order_by("pk")
    assert [e.eid for e in stored] == list(range(1, 41))  # inserted in id order


@pytest.mark.django_db(transaction=True)
def test_old_events_are_trimmed_at_most_once_a_minute(monkeypatch):
    import datetime

    from django.utils import timezone
    from django_eventstream.models import Event

    import lms.realtime.storage as storage

    publish("course-1", "n", "old")
    Event.objects.update(created=timezone.now() - datetime.timedelta(days=2))
    monkeypatch.setattr(storage, "_last_trim", 0.0)
    clock = [1000.0]
    monkeypatch.setattr(storage.time, "monotonic", lambda: clock[0])

    publish("course-1", "n", "new")  # trims: the old event and the placeholder go
    assert list(Event.objects.values_list("data", flat=True)) == ['"new"']

    clock[0] += 30
    publish("course-1", "n", "newer")
    Event.objects.update(created=timezone.now() - datetime.timedelta(days=2))
    clock[0] += 29
    publish("course-1", "n", "newest")  # within the minute: no trim
    assert Event.objects.count() == 3
    Event.objects.update(created=timezone.now() - datetime.timedelta(days=2))
    clock[0] += 2
    publish("course-1", "n", "last")
    assert list(Event.objects.values_list("data", flat=True)) == ['"last"']
