"""lms.ratelimit: every write a person can repeat is refused past its limit with 429 and Retry-After."""

import logging
import re
import socket
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from lms import ratelimit
from lms.chat.models import Message, Room
from lms.qa.actions import do_ask_question, do_create_poll
from lms.qa.models import PollVote, Question
from tests.factories import MessageFactory, RoomFactory, StreamFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def fresh_counts():
    # In memory this forgets every count; in Redis, keys hold user ids, new in every test.
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def limit(settings):
    """Set the limit of one action, e.g. limit("edit", 2) for two per minute."""

    def set_limit(action: str, count: int, window: float = 60) -> None:
        settings.RATE_LIMITS = {**settings.RATE_LIMITS, action: (count, window)}

    return set_limit


@pytest.fixture
def room(course):
    return RoomFactory(course=course, name="General")


@pytest.fixture
def classmates(course):
    people = UserFactory.create_batch(4)
    for person in people:
        course.enrolments.create(user=person)
    return people


@pytest.fixture
def stream(course):
    return StreamFactory(course=course, live=True, started_at=timezone.now() - timedelta(minutes=10))


def assert_refused(response) -> None:
    """429, a Retry-After within the window, and a notice the page swaps in (htmx) or a page."""
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "Slow down" in response.content.decode()
    if response.wsgi_request.headers.get("HX-Request"):
        assert response["HX-Retarget"] == "#slow-down"
        assert response["HX-Reswap"] == "outerHTML"
        assert 'id="slow-down"' in response.content.decode()


def test_edit_refused_past_limit_keeps_the_text(client, room, member, limit):
    limit("edit", 3)
    message = MessageFactory(room=room, author=member)
    client.force_login(member)
    url = reverse("chat:message_edit", args=[message.pk])
    for n in range(3):
        assert client.post(url, {"body": f"Edit {n}"}, headers=HX).status_code == 204
    response = client.post(url, {"body": "Edit too many"}, headers=HX)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "Slow down" in response.content.decode()
    assert "Edit too many</textarea>" in response.content.decode()  # the form comes back, text kept
    message.refresh_from_db()
    assert message.body == "Edit 2"


def test_edit_limit_is_per_person_across_rooms(client, course, member, limit):
    """A script cannot spread its edits over rooms: 1,963 edits in 80 s must be impossible."""
    limit("edit", 3)
    client.force_login(member)
    messages = [MessageFactory(room=RoomFactory(course=course), author=member) for _ in range(4)]
    codes = [
        client.post(reverse("chat:message_edit", args=[m.pk]), {"body": "x" * 4000}, headers=HX).status_code
        for m in messages
    ]
    assert codes == [204, 204, 204, 429]


def test_default_edit_limit_is_tight_for_a_script(settings):
    count, window = settings.RATE_LIMITS["edit"]
    assert count * (80 / window + 1) < 100  # far below the 1,963 edits of 80 s an audit made


def test_delete_refused_past_limit(client, room, member, limit):
    limit("delete", 2)
    client.force_login(member)
    messages = MessageFactory.create_batch(3, room=room, author=member)
    for message in messages[:2]:
        assert client.post(reverse("chat:message_delete", args=[message.pk]), headers=HX).status_code == 204
    assert_refused(client.post(reverse("chat:message_delete", args=[messages[2].pk]), headers=HX))
    assert not Message.objects.get(pk=messages[2].pk).is_deleted


def test_typing_refused_past_limit(client, room, member, limit, sent_events):
    limit("typing", 2)
    client.force_login(member)
    url = reverse("chat:typing", args=[room.pk])
    assert [client.post(url, headers=HX).status_code for _ in range(2)] == [204, 204]
    assert_refused(client.post(url, headers=HX))


def test_new_direct_conversations_refused_past_limit(client, member, classmates, limit):
    limit("direct", 2)
    client.force_login(member)
    for person in classmates[:2]:
        assert client.post(reverse("chat:direct", args=[person.pk])).status_code == 302
    response = client.post(reverse("chat:direct", args=[classmates[2].pk]))  # a plain form: a page
    assert_refused(response)
    assert "<html" in response.content.decode()
    assert Room.objects.filter(kind=Room.Kind.DIRECT).count() == 2
    # Opening a conversation one already has is not a new one: never refused.
    assert client.post(reverse("chat:direct", args=[classmates[0].pk])).status_code == 302


def test_question_ask_refused_past_limit_keeps_the_text(client, stream, member, limit):
    limit("ask", 2)
    client.force_login(member)
    url = reverse("qa:ask", args=[stream.pk])
    for n in range(2):
        assert client.post(url, {"text": f"Question {n}?"}, headers=HX).status_code == 204
    response = client.post(url, {"text": "Yet another?"}, headers=HX)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "Yet another?" in response.content.decode()
    assert Question.objects.count() == 2


def test_question_vote_refused_past_limit(client, stream, member, instructor, limit):
    limit("question_vote", 3)
    question, _ = do_ask_question(stream, author=instructor, text="Anyone?")
    client.force_login(member)
    url = reverse("qa:vote", args=[question.pk])
    for vote in ("add", "remove", "add"):
        assert client.post(url, {"vote": vote}, headers=HX).status_code == 204
    assert_refused(client.post(url, {"vote": "remove"}, headers=HX))


def test_poll_vote_refused_past_limit(client, stream, member, instructor, limit):
    limit("poll_vote", 2)
    poll = do_create_poll(stream, creator=instructor, question="Which?", options=["A", "B"])
    a, b = poll.options.all()
    client.force_login(member)
    url = reverse("qa:poll_vote", args=[poll.pk])
    for option in (a, b):
        assert client.post(url, {"option": option.pk}, headers=HX).status_code == 204
    assert_refused(client.post(url, {"option": a.pk}, headers=HX))
    assert PollVote.objects.get(poll=poll, user=member).option == b


def test_limits_are_per_person(client, room, member, classmates, limit):
    limit("typing", 1)
    url = reverse("chat:typing", args=[room.pk])
    client.force_login(member)
    assert client.post(url, headers=HX).status_code == 204
    assert client.post(url, headers=HX).status_code == 429
    client.force_login(classmates[0])
    assert client.post(url, headers=HX).status_code == 204


def test_refusal_notice_is_a_slot_of_every_page(client, room, member):
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert re.search(r'<p id="slow-down"[^>]*hidden', page)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_redis_down_fails_open_with_a_warning_not_an_error(settings, caplog):
    """Nothing listens at REDIS_URL: writes are still counted (per process), never refused for it."""
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "edit": (2, 60)}
    user = UserFactory.build(pk=1)
    with caplog.at_level(logging.WARNING, logger="lms.ratelimit"):
        waits = [ratelimit.check("edit", user) for _ in range(3)]
    assert waits[:2] == [0, 0] and waits[2] >= 1  # still limited, within this process
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.levelname for r in caplog.records] == ["WARNING"]  # once per outage, not per write
