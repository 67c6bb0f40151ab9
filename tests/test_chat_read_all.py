"""Mark all as read: every listed room's marker moves, one push of the counts, receipts coalesced."""

import pytest
from django.urls import reverse

import lms.chat.actions
from lms.chat.actions import do_create_room, do_mark_all_read, do_mark_read, do_post_message
from lms.chat.models import ReadMarker
from lms.chat.receipts import unread_state
from lms.chat.templatetags.chat import avatar_colour, initials
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ben(course):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


@pytest.fixture
def rooms(course, instructor, ben):
    general = do_create_room(course, creator=instructor, name="General")
    labs = do_create_room(course, creator=instructor, name="Labs")
    for room, n in ((general, 2), (labs, 3)):
        for i in range(n):
            do_post_message(room, author=ben, body=f"{room.name} {i}")
    return general, labs


def test_mark_all_read_moves_every_marker_and_pushes_the_counts_once(
    rooms, member, sent_events, django_capture_on_commit_callbacks, monkeypatch
):
    coalesced = []
    monkeypatch.setattr(lms.chat.actions, "coalesce", lambda *args: coalesced.append(args))
    general, labs = rooms
    do_mark_read(general, user=member, last_id=general.messages.first().pk)  # one of two read already
    assert unread_state(member)["total"] == 4
    sent_events.clear()
    coalesced.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert do_mark_all_read(member) == 2
    assert unread_state(member)["total"] == 0
    assert {m.room_id: m.last_read_id for m in ReadMarker.objects.filter(user=member)} == {
        general.pk: general.messages.last().pk, labs.pk: labs.messages.last().pk,
    }
    [(channel, event, html)] = sent_events
    assert (channel, event) == (f"user-{member.pk}", "unread_changed")
    assert 'data-total="0"' in html
    assert sorted(args[1] for args in coalesced) == sorted([general.pk, labs.pk])  # receipts, as do_mark_read
    sent_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert do_mark_all_read(member) == 0  # nothing left: nothing pushed
    assert sent_events == []


def test_mark_all_read_view(client, rooms, member, stranger):
    url = reverse("chat:read_all")
    assert client.post(url).status_code == 302  # to the login
    client.force_login(member)
    assert client.get(url).status_code == 405
    assert client.post(url, headers={"HX-Request": "true"}).status_code == 204
    assert unread_state(member)["total"] == 0
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("chat:home")
    client.force_login(stranger)
    assert client.post(url).status_code == 302  # no rooms: nothing to do
    assert not ReadMarker.objects.filter(user=stranger).exists()


def test_chat_home_offers_mark_all_as_read(client, rooms, member):
    client.force_login(member)
    page = client.get(reverse("chat:home")).content.decode()
    assert "Mark all as read" in page and reverse("chat:read_all") in page


def test_avatar_initials_and_colours():
    assert initials("Ben Okafor") == "BO"
    assert initials("Ana María Ruiz") == "AR"
    assert initials("ines") == "I"
    assert initials("  ") == "?"
    assert initials("élodie durand") == "ÉD"
    assert {avatar_colour(n) for n in range(12)} == set(range(12))  # neighbours differ
    assert avatar_colour(None) == 0
