"""Malformed requests get a 4xx, never a 500: every URL, with NUL bytes, bad UTF-8 and huge values.

The event stream (`/events/`) is served outside Django and has its own tests (test_realtime).
"""

import itertools
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.exceptions import NoReverseMatch
from django.utils import timezone

from lms.chat.models import Message
from lms.livestream.actions import do_create_stream, do_end_stream, do_start_stream
from lms.qa.actions import do_ask_question, do_create_poll
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

HUGE = "9" * 30
# Bad values as they travel in a query or a form body: NUL bytes, bytes that are not UTF-8,
# numbers past any column, and long strings.
ENCODED = ["%00", "a%00b", "%FF%FE", "%C0%AF", HUGE, "-1", "x" * 6_000]
# Every parameter a view reads from the query or the form, and a few it does not.
PARAMS = ["around", "before", "body", "calendar", "last_id", "latest", "names", "q", "reply_to", "vote",
          "option", "into", "text", "name", "user", "minutes", "url", "next", "display_name", "timezone"]
SKIP = {"events"}  # served by lms.realtime outside Django: see the module docstring


def named_patterns(resolver=None, namespace=""):
    """(name for reverse, route) of every named URL pattern, through includes."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from named_patterns(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name and pattern.name not in SKIP:
            yield f"{namespace}{pattern.name}", pattern


@pytest.fixture
def world(course, instructor, member):
    """One of everything, so that each URL reaches its view's code, not an early 404."""
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    course.instructors.add(admin)
    room = RoomFactory(course=course)
    message = MessageFactory(room=room, author=admin)
    starts = timezone.now() - timedelta(hours=2)
    stream = do_create_stream(course, creator=instructor, title="Cells", starts_at=starts, ends_at=starts + timedelta(hours=1))
    stream = do_start_stream(stream, actor=instructor)
    question, _ = do_ask_question(stream, author=member, text="Why?")
    poll = do_create_poll(stream, creator=instructor, question="Which?", options=["A", "B"])
    do_end_stream(stream, actor=instructor)
    member.calendar_token = "t" * 32
    member.save()
    ids = {
        "room_id": room.pk, "message_id": message.pk, "course_id": course.pk, "stream_id": stream.pk,
        "question_id": question.pk, "poll_id": poll.pk, "user_id": member.pk, "object_id": member.pk,
    }
    words = {"fmt": "csv", "verb": "pin", "token": member.calendar_token, "app_label": "accounts",
             "model_name": "user", "url": "x", "content_type_id": "1"}
    return admin, {**{k: str(v) for k, v in ids.items()}, **words}


def concrete_urls(values: dict) -> list[str]:
    urls = []
    for name, pattern in named_patterns():
        keys = list(pattern.pattern.converters) or list(pattern.pattern.regex.groupindex)
        try:
            urls.append(reverse(name, kwargs={key: values.get(key, "1") for key in keys}))
        except NoReverseMatch:
            pass  # e.g. the admin's views of models that are not registered
    assert len(urls) > 40
    return urls


def variants(url: str):
    """The URL with each path segment broken, then with each parameter broken."""
    segments = url.strip("/").split("/")
    for n, bad in itertools.product(range(len(segments)), ["%00", "%FF%FE", HUGE]):
        broken = segments.copy()
        broken[n] = bad if bad == HUGE or not segments[n] else segments[n] + bad
        yield "/" + "/".join(broken) + "/"
    for bad in ["%00", "%C0%AF", HUGE, "x" * 6_000]:
        yield url + "?" + "&".join(f"{param}={bad}" for param in PARAMS)


def test_no_url_answers_500_to_malformed_paths_or_queries(world):
    admin, values = world
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    failures = []
    for url in concrete_urls(values):
        for variant in variants(url):
            response = client.get(variant, headers={"HX-Request": "true"})
            if response.status_code >= 500:
                failures.append(("get", variant[:120], response.status_code))
    assert not failures, "\n".join(map(str, failures))


def test_no_url_answers_500_to_malformed_forms(world):
    """Every parameter a view reads, posted with each bad value, raw (so also as bad UTF-8)."""
    admin, values = world
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    failures = []
    for url in concrete_urls(values):
        for bad in ENCODED:
            body = "&".join(f"{param}={bad}" for param in PARAMS)
            response = client.post(url, body, content_type="application/x-www-form-urlencoded",
                                   headers={"HX-Request": "true"})
            if response.status_code >= 500:
                failures.append(("post", url, bad[:20], response.status_code))
    assert not failures, "\n".join(map(str, failures))


def test_nul_in_calendar_feed_path_is_400(client, world):
    assert client.get("/livestream/calendar/%00" + "a" * 30 + ".ics").status_code == 400
    assert Message.objects.exists()  # the world is there: the 400 is not a missing table
