"""The live layer of chat: typing, presence, read markers, unread counts, mentions, notifications."""

import os

import pytest
from django.urls import reverse

from lms.chat.actions import (
    announce_room_presence,
    do_create_room,
    do_mark_read,
    do_post_message,
    do_signal_typing,
    typing_sentence,
)
from lms.chat.models import Notification, ReadMarker
from lms.chat.receipts import annotate_receipts, unread_counts
from lms.chat.text import find_mentions
from lms.realtime import ephemeral
from lms.realtime.hub import redis_key
from tests.conftest import run
from tests.factories import UserFactory
from tests.servers import AppServer
from tests.sse import SSEClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def typing_events(monkeypatch):
    """Each announcement of who is typing: (room id, [user ids])."""
    calls = []
    monkeypatch.setitem(ephemeral._kinds, "typing", ephemeral.Kind(6, lambda pk, members: calls.append((pk, members))))
    forget_typing()
    yield calls
    forget_typing()


def forget_typing():
    from django.conf import settings

    if settings.REDIS_URL:
        client = ephemeral._client()
        for key in client.scan_iter(match=redis_key("eph:typing") + "*"):
            client.delete(key)
    ephemeral._memory.get("typing", {}).clear()


# --- typing -------------------------------------------------------------------------------------


def test_typing_is_announced_once_however_often_the_signal_repeats(room, member, typing_events):
    for _ in range(5):
        do_signal_typing(room, user=member)
    assert typing_events == [(room.pk, [member.pk])]


def test_typing_expires_six_seconds_after_the_last_signal(room, member, ben, typing_events):
    import time

    do_signal_typing(room, user=member)
    do_signal_typing(room, user=ben)
    assert ephemeral.sweep(now=time.time() + 5) == 0  # not yet
    assert ephemeral.sweep(now=time.time() + 6.5) == 1  # both gone, one announcement
    assert typing_events[-1] == (room.pk, [])
    assert ephemeral.members_of("typing", room.pk) == []


def test_sending_the_message_ends_typing_at_once(room, member, typing_events, django_capture_on_commit_callbacks):
    do_signal_typing(room, user=member)
    with django_capture_on_commit_callbacks(execute=True):
        do_post_message(room, author=member, body="done")
    assert typing_events[-1] == (room.pk, [])


def test_typing_writes_nothing_to_the_database(room, member, typing_events, django_assert_num_queries):
    with django_assert_num_queries(0):
        ephemeral.touch("typing", room.pk, member.pk)


@pytest.mark.parametrize(
    "names, sentence",
    [([], ""), (["Ana"], "Ana is typing…"), (["Ana", "Ben"], "Ana and Ben are typing…"),
     (["Ana", "Ben", "Chloé"], "3 people are typing…")],
)
def test_typing_sentence(names, sentence):
    assert typing_sentence(names) == sentence


def test_the_pushed_indicator_has_a_line_without_each_typist(room, member, ben, sent_events, django_capture_on_commit_callbacks):
    from lms.chat.actions import announce_typing

    with django_capture_on_commit_callbacks(execute=True):
        announce_typing(room.pk, [member.pk, ben.pk])
    [(channel, event, html)] = sent_events
    assert (channel, event) == (f"room-{room.pk}", "typing_changed")
    assert f'data-for="all">{member.name} and Ben Okafor are typing…' in html
    assert f'data-for="{member.pk}">Ben Okafor is typing…' in html
    assert f'data-for="{ben.pk}">{member.name} is typing…' in html


def test_typing_signal_view_checks_access(client, room, member, stranger):
    url = reverse("chat:typing", args=[room.pk])
    client.force_login(stranger)
    assert client.post(url).status_code == 404
    client.force_login(member)
    assert client.post(url).status_code == 204
    assert client.get(url).status_code == 405


# --- read markers, receipts and unread counts ---------------------------------------------------


def test_read_marker_only_moves_forward(room, member, ben):
    first, _ = do_post_message(room, author=ben, body="one")
    second, _ = do_post_message(room, author=ben, body="two")
    assert do_mark_read(room, user=member, last_id=second.pk) is True
    assert do_mark_read(room, user=member, last_id=first.pk) is False
    assert ReadMarker.objects.get(room=room, user=member).last_read_id == second.pk
    assert ReadMarker.objects.filter(room=room, user=member).count() == 1  # a row per member, not per message


def test_unread_counts_come_from_the_marker_and_agree_across_tabs(client, room, member, ben):
    other = do_create_room(room.course, creator=room.created_by, name="Week 5")
    for n in range(3):
        do_post_message(room, author=ben, body=f"m{n}")
    do_post_message(room, author=member, body="my own")  # one's own messages are never unread
    assert unread_counts(member, [room, other]) == {room.pk: 3}
    # Two tabs of one user: opening the room in one clears the count both see.
    client.force_login(member)
    client.get(reverse("chat:room", args=[room.pk]))
    for _tab in range(2):
        state = client.get(reverse("chat:unread")).content.decode()
        assert 'data-total="0"' in state


def test_mark_read_view_validates_and_pushes_to_the_users_tabs(client, room, member, ben, sent_events, django_capture_on_commit_callbacks):
    message, _ = do_post_message(room, author=ben, body="hi")
    client.force_login(member)
    url = reverse("chat:read", args=[room.pk])
    assert client.post(url, {"last_id": "x"}).status_code == 400
    sent_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"last_id": message.pk}).status_code == 204
    events = {(channel, event) for channel, event, _ in sent_events}
    assert (f"user-{member.pk}", "unread_changed") in events
    assert (f"room-{room.pk}", "receipts_changed") in events


def test_receipts_count_readers_but_not_the_author_nor_those_who_turned_them_off(room, member, ben, instructor):
    message, _ = do_post_message(room, author=member, body="hello")
    do_mark_read(room, user=ben, last_id=message.pk)
    do_mark_read(room, user=member, last_id=message.pk)
    instructor.send_read_receipts = False
    instructor.save()
    do_mark_read(room, user=instructor, last_id=message.pk)
    annotate_receipts(room, [message])
    assert message.seen_by == ["Ben Okafor"]


# --- mentions and notifications -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, names",
    [
        ("hi @ana", {"ana"}),
        ("@ana, @ben.", {"ana", "ben"}),
        ("mail ana@example.com", set()),
        ("`@ana` in code", set()),
        ("```\n@ana\n```", set()),
        ("[@ana](https://example.com)", set()),
        ("@all please read", {"all"}),
    ],
)
def test_mention_parsing(body, names):
    assert find_mentions(body) == names


def test_a_mention_notifies_the_member_and_highlights_the_name(room, member, ben, sent_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = do_post_message(room, author=member, body="thanks @ben and @nobody")
    assert '<span class="mention">@ben</span>' in message.body_html
    assert "@nobody" in message.body_html and 'mention">@nobody' not in message.body_html
    assert list(Notification.objects.values_list("user__username", flat=True)) == ["ben"]
    assert any(channel == f"user-{ben.pk}" and event == "notifications_changed" for channel, event, _ in sent_events)


def test_only_instructors_notify_everyone_with_at_all(room, member, ben, instructor):
    do_post_message(room, author=member, body="@all hello")
    assert not Notification.objects.exists()
    do_post_message(room, author=instructor, body="@all exam moved")
    assert set(Notification.objects.values_list("user__username", flat=True)) == {member.username, "ben"}


def test_notifications_page_shows_only_ones_own_and_marks_them_read(client, room, member, ben, instructor):
    do_post_message(room, author=member, body="hey @ben")
    do_post_message(room, author=ben, body="hey @" + member.username)
    url = reverse("chat:notifications")
    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(ben)
    page = client.get(url).content.decode()
    assert "hey @ben" in page and f"hey @{member.username}" not in page
    assert not Notification.objects.filter(user=ben, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=member, read_at__isnull=True).exists()


def test_mention_suggestions_are_room_members_only(client, room, member, ben, stranger):
    client.force_login(member)
    html = client.get(reverse("chat:mentions", args=[room.pk]), {"q": "b"}).content.decode()
    assert 'data-mention="ben"' in html and "zed" not in html and 'data-mention="all"' not in html
    client.force_login(stranger)
    assert client.get(reverse("chat:mentions", args=[room.pk]), {"q": "b"}).status_code == 404


# --- presence across processes ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
def test_presence_is_shared_across_server_processes(test_database_url, room, member, ben, session_for):
    env = {"DATABASE_URL": test_database_url, "REALTIME_POLL_SECONDS": "600"}
    servers = [AppServer(env).start(), AppServer(env).start()]
    keys = [session_for(member), session_for(ben)]
    try:
        async def scenario():
            url = f"/events/?channel=room-{room.pk}"
            async with SSEClient(servers[0].url + url, session=keys[0]) as ana_stream:
                await ana_stream.next_event(5, skip=())
                async with SSEClient(servers[1].url + url, session=keys[1]):
                    # Within about a second, a presence list naming both arrives on the other process.
                    for _ in range(10):
                        event = await ana_stream.next_event(5)
                        if event.type == "presence_changed" and "Ben Okafor" in event.data and member.name in event.data:
                            break
                    else:
                        raise AssertionError("no presence list with both")
                for _ in range(10):
                    event = await ana_stream.next_event(5)
                    if event.type == "presence_changed" and "Ben Okafor" not in event.data:
                        return
                raise AssertionError("Ben did not leave the presence list")

        run(scenario())
    finally:
        for server in servers:
            server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_crowded_room_names_the_first_people_by_name_and_counts_the_rest(room, sent_events, monkeypatch):
    import lms.chat.actions

    monkeypatch.setattr(lms.chat.actions, "PRESENCE_LIST_LIMIT", 3)
    names = ["zoe", "Émile", "bea", "Carl", "adam <b>"]
    people = [UserFactory(display_name=name) for name in names]
    people.append(UserFactory(display_name="", first_name="Dora", last_name="Diaz"))

    announce_room_presence(room.pk, {p.pk for p in people})

    [(channel_name, event, data)] = sent_events
    assert (channel_name, event) == (f"room-{room.pk}", "presence_changed")
    assert "Here now (6)" in data
    shown = [data.index(name) for name in ("adam &lt;b&gt;", "bea", "Carl")]
    assert shown == sorted(shown)  # by name, whatever the case
    assert "Dora Diaz" not in data and "zoe" not in data
    assert "and 3 more" in data


def test_presence_is_written_nowhere_in_the_database(room, member, django_assert_num_queries):
    from lms.realtime import present_users

    with django_assert_num_queries(0):
        present_users([f"room-{room.pk}"])
