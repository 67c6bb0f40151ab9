"""What real use needs of the live layer: pages that do not ask again and again, pushes coalesced,
receipts only where they stay cheap, presence that works (issue: real use)."""

import asyncio
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from lms.accounts.actions import announce_online
from lms.chat.actions import announce_receipts, do_mark_read, do_post_message, widen_read_range
from lms.chat.models import Room
from lms.chat.receipts import annotate_receipts, receipts_shown
from lms.realtime.coalesce import coalesce, register_coalesced
from lms.realtime.hub import get_hub
from tests.conftest import run
from tests.factories import CourseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stream(course, instructor):
    """A live stream with its chat and Q&A, as an instructor makes and starts it."""
    from lms.livestream.actions import do_create_stream, do_start_stream

    now = timezone.now()
    stream = do_create_stream(course, creator=instructor, title="Lecture 1", starts_at=now, ends_at=now + timedelta(hours=1))
    return do_start_stream(stream, actor=instructor)


def triggers(html: str) -> list[str]:
    return re.findall(r'hx-trigger="([^"]*)"', html)


# --- pages that stay quiet ---------------------------------------------------------------------


def test_no_page_fetches_itself_in_a_loop_or_polls(client, room, member, instructor, stream):
    """`load` on an element that a swap puts back fires again with every answer; `every` polls.
    An idle page must make no request but its event stream."""
    pages = [
        (member, reverse("home")), (member, reverse("chat:home")), (member, reverse("chat:room", args=[room.pk])),
        (member, reverse("livestream:list")), (member, reverse("livestream:detail", args=[stream.pk])),
        (member, reverse("chat:notifications")), (instructor, reverse("livestream:manage", args=[stream.pk])),
    ]
    for user, url in pages:
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, url
        for trigger in triggers(response.content.decode()):
            words = re.split(r"[\s,]+", trigger)
            assert "load" not in words and "every" not in words, (url, trigger)


def test_a_page_starts_with_its_unread_counts_and_their_limit(client, room, member, ben):
    do_post_message(room, author=ben, body="one")
    newest, _ = do_post_message(room, author=ben, body="two")
    client.force_login(member)
    html = client.get(reverse("chat:home")).content.decode()
    assert f'data-counts="{room.pk}:2 "' in html
    assert f'data-upto="{newest.pk}"' in html
    # Each line of chat home names its newest message and author, for the page to count it.
    assert f'data-last="{newest.pk}" data-last-author="{ben.pk}"' in html


def test_reading_pushes_the_new_counts_to_the_readers_pages(room, member, ben, sent_events, django_capture_on_commit_callbacks):
    message, _ = do_post_message(room, author=ben, body="hi")
    sent_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        do_mark_read(room, user=member, last_id=message.pk)
    [(_, _, state)] = [e for e in sent_events if e[:2] == (f"user-{member.pk}", "unread_changed")]
    assert 'id="unread-state"' in state and 'hx-swap-oob="true"' in state
    assert 'data-total="0"' in state and f'data-upto="{message.pk}"' in state


def test_the_stream_chat_sends_no_read_reports_and_a_room_does(client, room, member, stream):
    client.force_login(member)
    stream_page = client.get(reverse("livestream:detail", args=[stream.pk])).content.decode()
    assert 'id="messages"' in stream_page and "data-read-url" not in stream_page
    room_page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert f'data-read-url="{reverse("chat:read", args=[room.pk])}"' in room_page


# --- receipts that scale ------------------------------------------------------------------------


def test_receipts_are_shown_in_direct_and_small_rooms_only(room, member, ben, instructor, stream, settings):
    from lms.chat.actions import do_get_or_create_direct_room

    direct = do_get_or_create_direct_room(member, other=ben)
    assert receipts_shown(direct) and receipts_shown(room)
    assert not receipts_shown(Room.objects.get(pk=stream.chat_room_id))
    settings.CHAT_RECEIPTS_MAX_MEMBERS = 2  # the course has three people
    assert not receipts_shown(room)
    message, _ = do_post_message(room, author=member, body="hello")
    do_mark_read(room, user=ben, last_id=message.pk)
    annotate_receipts(room, [message])
    assert message.seen_by == []


def test_reading_a_large_room_or_a_stream_chat_pushes_no_receipts(
    room, member, ben, stream, settings, sent_events, django_capture_on_commit_callbacks
):
    settings.CHAT_RECEIPTS_MAX_MEMBERS = 2
    chat = Room.objects.get(pk=stream.chat_room_id)
    for place in (room, chat):
        message, _ = do_post_message(place, author=member, body="hello")
        sent_events.clear()
        with django_capture_on_commit_callbacks(execute=True):
            assert do_mark_read(place, user=ben, last_id=message.pk)
        assert [event for _, event, _ in sent_events] == ["unread_changed"]


def test_a_receipts_push_carries_only_the_messages_whose_readers_changed(
    room, member, ben, sent_events, django_capture_on_commit_callbacks
):
    messages = [do_post_message(room, author=member, body=f"m{n}")[0] for n in range(6)]
    do_mark_read(room, user=ben, last_id=messages[3].pk)
    sent_events.clear()
    changed = {"lo": messages[1].pk, "hi": messages[3].pk}
    widen_read_range(changed, {"lo": messages[2].pk, "hi": messages[3].pk})
    with django_capture_on_commit_callbacks(execute=True):
        announce_receipts(room.pk, changed)
    [(channel, event, html)] = sent_events
    assert (channel, event) == (f"room-{room.pk}", "receipts_changed")
    assert sorted(int(pk) for pk in re.findall(r'id="seen-(\d+)"', html)) == [m.pk for m in messages[1:4]]
    assert html.count("Seen by 1") == 3


def test_coalesced_work_runs_once_per_object_with_everything_asked_for(db):
    """Asked for from request threads while the hub's loop runs: one run per object and period."""
    calls = []
    register_coalesced("test-coalesce", delay=0.2, run=lambda pk, items: calls.append((pk, dict(items))))

    async def scenario():
        hub = get_hub()
        try:
            def ask():
                coalesce("test-coalesce", 1, {"a": 1})
                coalesce("test-coalesce", 1, {"b": 2})
                coalesce("test-coalesce", 2, {"c": 3})

            await asyncio.to_thread(ask)
            await asyncio.sleep(0.1)
            assert calls == []  # not before the delay
            for _ in range(50):
                if len(calls) == 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.to_thread(coalesce, "test-coalesce", 1, {"d": 4})  # a new period
            for _ in range(50):
                if len(calls) == 3:
                    break
                await asyncio.sleep(0.05)
        finally:
            await hub.stop()

    run(scenario())
    assert sorted(calls[:2]) == [(1, {"a": 1, "b": 2}), (2, {"c": 3})]
    assert calls[2] == (1, {"d": 4})


# --- presence -----------------------------------------------------------------------------------


def test_coming_online_is_pushed_to_each_course_of_the_person(member, course, sent_events, django_capture_on_commit_callbacks):
    other = CourseFactory(code="CHEM1")
    other.enrolments.create(user=member)
    with django_capture_on_commit_callbacks(execute=True):
        announce_online(member.pk, {member.pk})
    pushed = {channel: html for channel, event, html in sent_events if event == "online_changed"}
    assert set(pushed) == {f"course-{course.pk}", f"course-{other.pk}"}
    for html in pushed.values():
        assert f'data-presence-signal="{member.pk}" data-online="1"' in html
    sent_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        announce_online(member.pk, set())
    assert len(sent_events) == 2 and all('data-online="0"' in html for _, _, html in sent_events)


@pytest.mark.django_db(transaction=True)
def test_a_crowd_arriving_makes_one_presence_push_per_course(member, ben, course, sent_events):
    """Everyone who comes online within the period is in one push for the course, not one each."""
    crowd = [member, ben, *(UserFactory() for _ in range(8))]
    for person in crowd[2:]:
        course.enrolments.create(user=person)

    async def scenario():
        hub = get_hub()
        try:
            for person in crowd:
                await asyncio.to_thread(announce_online, person.pk, {person.pk})
            for _ in range(60):
                if sent_events:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.6)  # nothing more comes for this period
        finally:
            await hub.stop()

    run(scenario())
    [(channel, event, html)] = sent_events
    assert (channel, event) == (f"course-{course.pk}", "online_changed")
    assert html.count("data-presence-signal=") == len(crowd)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_votes_makes_one_push_of_the_ranked_list(stream, member, ben, course, sent_events):
    """A hall upvoting at once: one re-ranked list per period for viewers and the panel, with
    every vote in it, not one list per vote to every viewer."""
    from lms.qa.actions import do_ask_question, do_set_vote

    question, _ = do_ask_question(stream, author=member, text="Will this be on the exam?")
    voters = [ben, *(UserFactory() for _ in range(9))]
    for voter in voters[1:]:
        course.enrolments.create(user=voter)
    sent_events.clear()

    async def scenario():
        hub = get_hub()
        try:
            for voter in voters:
                await asyncio.to_thread(do_set_vote, question, user=voter, voted=True)
            for _ in range(60):
                if len(sent_events) >= 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.7)  # nothing more comes for this burst
        finally:
            await hub.stop()

    run(scenario())
    assert sorted((channel, event) for channel, event, _ in sent_events) == [
        (f"stream-{stream.pk}", "questions_changed"), (f"stream_manage-{stream.pk}", "questions_changed"),
    ]
    assert all(re.search(r'class="vote-count">10\b', html) for _, _, html in sent_events)


# --- restarts -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_stopping_the_server_ends_its_streams_cleanly_at_once(test_database_url, room, member, session_for):
    """A deploy or restart (SIGTERM) ends every open stream at once, cleanly: the server does not
    wait out its graceful period and then cancel them, with an error logged for each."""
    import time

    from tests.servers import AppServer
    from tests.sse import SSEClient

    server = AppServer({"DATABASE_URL": test_database_url}).start()
    key = session_for(member)

    async def scenario():
        async with SSEClient(f"{server.url}/events/?channel=room-{room.pk}", session=key) as stream:
            await stream.next_event(5, skip=())
            started = time.monotonic()
            await asyncio.to_thread(server.stop)
            with pytest.raises(ConnectionError):  # the stream ended, not cut
                await stream.next_event(5)
            return time.monotonic() - started

    took = run(scenario())
    assert took < 1.5  # the tests' servers cancel what is left after 2 s


def test_a_burst_of_page_requests_waits_its_turn_instead_of_crowding_the_pool(settings):
    """A thousand pages opened at once would be a thousand threads waiting on a pool of ten
    connections (and 500s past its timeout): the router lets REQUEST_CONCURRENCY run at once."""
    from lms.realtime.asgi import EventStreamRouter

    settings.REQUEST_CONCURRENCY = 3
    running, most = 0, 0

    async def django_app(scope, receive, send):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    router = EventStreamRouter(django_app)
    answered = []

    async def one():
        async def send(message):
            if message["type"] == "http.response.start":
                answered.append(message["status"])

        await router({"type": "http", "path": "/livestream/1/"}, None, send)

    async def scenario():
        await asyncio.gather(*(one() for _ in range(40)))

    run(scenario())
    assert answered == [200] * 40 and most == 3
