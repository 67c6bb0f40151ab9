"""Emoji reactions: one per person and emoji, rate limited, pushed as the message's reactions bar only."""

import re

import pytest
from django.db import IntegrityError
from django.urls import reverse

import lms.chat.actions
from lms import ratelimit
from lms.chat.actions import RateLimited, do_add_reaction, do_edit_message, do_mute_member, do_remove_reaction
from lms.chat.models import Reaction
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def fresh_counts():
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def room(course):
    return RoomFactory(course=course, name="General")


@pytest.fixture
def ben(course):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


@pytest.fixture
def message(room, instructor):
    return MessageFactory(room=room, author=instructor, body="Quiz on Friday")


def fragment(html: str, element_id: str) -> str:
    match = re.search(rf'<div id="{element_id}".*?</div>', html, re.S)
    assert match, f"no #{element_id} in {html[:300]}"
    return re.sub(r' hx-swap-oob="true"', "", match.group(0))


def test_a_reaction_pushes_only_the_reactions_bar(message, member, sent_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert do_add_reaction(message, user=member, emoji="👍") is True
    [(channel, event, html)] = sent_events
    assert (channel, event) == (f"room-{message.room_id}", "reactions_changed")
    assert html.strip().startswith(f'<div id="reactions-{message.pk}"') and 'hx-swap-oob="true"' in html
    assert "Quiz on Friday" not in html  # never the whole message
    assert f'data-users="{member.pk}"' in html and f"{member.name} reacted with 👍" in html
    assert '<span class="count">1</span>' in html


def test_one_reaction_per_person_and_emoji(message, member, ben, sent_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        do_add_reaction(message, user=member, emoji="👍")
        assert do_add_reaction(message, user=member, emoji="👍") is False  # a double click
        do_add_reaction(message, user=ben, emoji="👍")
        do_add_reaction(message, user=member, emoji="🎉")
    assert Reaction.objects.filter(message=message).count() == 3
    assert len(sent_events) == 3  # nothing pushed for the duplicate
    with pytest.raises(IntegrityError):
        Reaction.objects.create(message=message, user=member, emoji="🎉")


def test_removing_a_reaction_pushes_the_smaller_bar(message, member, ben, sent_events, django_capture_on_commit_callbacks):
    do_add_reaction(message, user=member, emoji="👍")
    do_add_reaction(message, user=ben, emoji="👍")
    sent_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert do_remove_reaction(message, user=member, emoji="👍") is True
        assert do_remove_reaction(message, user=member, emoji="👍") is False
    [(_, event, html)] = sent_events
    assert event == "reactions_changed"
    assert f'data-users="{ben.pk}"' in html and '<span class="count">1</span>' in html


def test_only_offered_reactions_are_stored(message, member):
    with pytest.raises(ValueError):
        do_add_reaction(message, user=member, emoji="<b>hi</b>")
    assert not Reaction.objects.exists()


def test_reactions_are_rate_limited(message, member, monkeypatch):
    monkeypatch.setattr(lms.chat.actions, "REACTION_LIMIT", 3)
    do_add_reaction(message, user=member, emoji="👍")
    do_remove_reaction(message, user=member, emoji="👍")
    do_add_reaction(message, user=member, emoji="🎉")
    with pytest.raises(RateLimited) as limited:
        do_add_reaction(message, user=member, emoji="❤️")
    assert limited.value.wait >= 1
    assert list(Reaction.objects.values_list("emoji", flat=True)) == ["🎉"]


def test_the_pushed_bar_is_what_the_page_shows(client, message, member, ben, sent_events, django_capture_on_commit_callbacks):
    do_add_reaction(message, user=ben, emoji="🎉")
    with django_capture_on_commit_callbacks(execute=True):
        do_add_reaction(message, user=member, emoji="🎉")
    pushed = sent_events[-1][2]
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[message.room_id])).content.decode()
    element = f"reactions-{message.pk}"
    assert fragment(page, element) == fragment(pushed, element)
    assert "Ben Okafor, " in fragment(page, element)


def test_an_edit_keeps_the_reactions(message, instructor, member, sent_events, django_capture_on_commit_callbacks):
    do_add_reaction(message, user=member, emoji="👍")
    sent_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        do_edit_message(message, body="Quiz on Monday")
    [(_, event, html)] = sent_events
    assert event == "message_updated" and f'data-users="{member.pk}"' in html


def test_the_page_reads_reactions_in_one_query(client, room, member, ben, django_assert_max_num_queries):
    messages = [MessageFactory(room=room, author=ben) for _ in range(10)]
    for m in messages:
        do_add_reaction(m, user=member, emoji="👍")
    client.force_login(member)
    client.get(reverse("chat:room", args=[room.pk]))  # warm up sessions, caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert page.count('class="reaction"') == 10
    assert sum('"chat_reaction"' in q["sql"] for q in queries.captured_queries) == 1


def test_the_react_view(client, message, member, stranger, sent_events):
    url = reverse("chat:message_react", args=[message.pk])
    client.force_login(member)
    assert client.post(url, {"emoji": "👍"}, headers=HX).status_code == 204
    assert client.post(url, {"emoji": "👍", "op": "remove"}, headers=HX).status_code == 204
    assert not Reaction.objects.exists()
    assert client.post(url, {"emoji": "nope"}, headers=HX).status_code == 400
    assert client.get(url).status_code == 405
    client.force_login(stranger)
    assert client.post(url, {"emoji": "👍"}, headers=HX).status_code == 404


def test_the_react_view_refuses_the_muted_and_the_hasty(client, message, member, instructor, monkeypatch):
    url = reverse("chat:message_react", args=[message.pk])
    client.force_login(member)
    monkeypatch.setattr(lms.chat.actions, "REACTION_LIMIT", 1)
    assert client.post(url, {"emoji": "👍"}, headers=HX).status_code == 204
    response = client.post(url, {"emoji": "🎉"}, headers=HX)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    do_mute_member(message.room.course, actor=instructor, user=member, until=None)
    ratelimit.reset()
    assert client.post(url, {"emoji": "🎉"}, headers=HX).status_code == 403


def test_a_burst_of_reactions_is_pushed_once_per_period(
    message, member, ben, sent_events, django_capture_on_commit_callbacks, monkeypatch
):
    from lms.chat.actions import REACTIONS_DELAY, announce_reactions
    from lms.realtime import coalesce as coalescing

    scheduled = []

    class Loop:
        def call_soon_threadsafe(self, fn, *args):
            fn(*args)

        def call_later(self, delay, fn, *args):
            scheduled.append(delay)

    class Hub:
        loop = Loop()

    monkeypatch.setattr("lms.realtime.hub.current_hub", lambda: Hub)
    with django_capture_on_commit_callbacks(execute=True):
        do_add_reaction(message, user=member, emoji="👍")
    with django_capture_on_commit_callbacks(execute=True):
        do_add_reaction(message, user=ben, emoji="👍")
        do_add_reaction(message, user=ben, emoji="🎉")
    assert sent_events == [] and scheduled == [REACTIONS_DELAY]  # one timer for the burst
    _, items = coalescing._pending.pop(("reactions", message.pk))
    with django_capture_on_commit_callbacks(execute=True):
        announce_reactions(message.pk, items)  # what the timer runs
    [(_, event, html)] = sent_events
    assert event == "reactions_changed" and html.count('class="reaction"') == 2
    assert '<span class="count">2</span>' in html
