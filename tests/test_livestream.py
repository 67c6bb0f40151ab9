"""lms.livestream: access to every view, channels, the state machine, the room key, Jitsi and JaaS
tokens, viewer counts and their coalescing, the form, the stream page's chat, queries, sample data."""

import asyncio
import html
import os
import re
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lms.chat.models import Message, Room
from lms.courses.models import Course
from lms.livestream.actions import (
    StreamStateError,
    do_create_stream,
    do_end_stream,
    do_record_viewer_count,
    do_start_stream,
)
from lms.livestream.models import Stream
from lms.realtime import can_read_channel, channels
from lms.realtime.channels import register_channel
from lms.realtime.hub import Hub, Subscriber, redis_key
from tests.factories import CourseFactory, InstructorFactory, MessageFactory, RoomFactory, StreamFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
FIVE_MINUTE_NOTICE = "ends embedded calls after 5 minutes"
# Measured: a member's repeat visit to a live stream page with its chat and Q&A, 5 or 30 messages alike.
# (+2 since: the chat's read receipts and the notifications badge; +1: the messages' reactions.)
STREAM_PAGE_QUERIES = 21


# --- Fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def staff(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def other_instructor(db):
    return InstructorFactory(username="omar")


@pytest.fixture
def other_course(other_instructor):
    return CourseFactory(code="CS102", instructors=[other_instructor])


@pytest.fixture
def stream(course, instructor):
    """Scheduled for tomorrow, with its chat room, as the create form makes it."""
    starts = timezone.now() + timedelta(days=1)
    return do_create_stream(
        course, creator=instructor, title="Cell biology", starts_at=starts, ends_at=starts + timedelta(hours=1)
    )


@pytest.fixture
def live_stream(stream, instructor):
    return do_start_stream(stream, actor=instructor)


@pytest.fixture
def public_jitsi(settings):
    """The defaults: meet.jit.si, no JaaS."""
    settings.JITSI_DOMAIN = "meet.jit.si"
    settings.JAAS_APP_ID = settings.JAAS_KID = settings.JAAS_PRIVATE_KEY = ""


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jaas(settings, rsa_key):
    settings.JITSI_DOMAIN = "8x8.vc"
    settings.JAAS_APP_ID = "vpaas-magic-cookie-0123456789abcdef"
    settings.JAAS_KID = "vpaas-magic-cookie-0123456789abcdef/4f2a1b"
    settings.JAAS_PRIVATE_KEY = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return settings


@pytest.fixture
def pushes(monkeypatch):
    """Like `sent_events`, with the `stored` flag: (channel, event, data, stored)."""
    import lms.realtime

    sent = []

    def capture(channel, event, data, *, stored=True, **copies):
        sent.append((channel, event, data, stored))

    monkeypatch.setattr(lms.realtime, "publish", capture)
    return sent


@pytest.fixture
def counted_channel():
    """A channel kind "teststream" whose occupancy callback records (pk, count, when)."""
    calls = []

    def record(pk, count):  # a plain function: the hub runs it in a worker thread
        calls.append((pk, count, time.monotonic()))

    register_channel("teststream", lambda user, pk: True, on_occupancy=record)
    yield calls
    channels._checks.pop("teststream", None)
    channels._occupancy.pop("teststream", None)


def section(markup: str, name: str) -> str:
    """The part of the list page under one heading: live, upcoming or past."""
    after = markup.split(f'id="{name}-heading"', 1)[1]
    following = {"live": 'id="upcoming-heading"', "upcoming": 'id="past-heading"', "past": "</div>"}[name]
    return after.split(following, 1)[0]


def jitsi_attributes(markup: str) -> dict[str, str]:
    tag = re.search(r'<div id="jitsi"[^>]*>', markup, re.DOTALL).group(0)
    return {name: html.unescape(value) for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', tag)}


def public_key_pem(rsa_key) -> bytes:
    return rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def decode_token(token: str, rsa_key) -> dict:
    return jwt.decode(token, public_key_pem(rsa_key), algorithms=["RS256"], audience="jitsi")


# --- Access to every view -----------------------------------------------------------------------

VIEWS = {
    # name: (method, takes the stream id)
    "list": ("get", False),
    "create": ("get", False),
    "detail": ("get", True),
    "stage": ("get", True),
    "edit": ("get", True),
    "manage": ("get", True),
    "stats": ("get", True),
    "start": ("post", True),
    "end": ("post", True),
}
INSTRUCTOR_STATUSES = {
    "list": 200, "create": 200, "detail": 200, "stage": 200, "edit": 200, "manage": 200, "stats": 200,
    "start": 302, "end": 302,
}
EXPECTED = {
    "member": {"list": 200, "create": 403, "detail": 200, "stage": 200,
               "edit": 403, "manage": 403, "stats": 403, "start": 403, "end": 403},
    "stranger": {"list": 200, "create": 403, "detail": 404, "stage": 404,
                 "edit": 404, "manage": 404, "stats": 404, "start": 404, "end": 404},
    "instructor": INSTRUCTOR_STATUSES,
    "other_instructor": {"list": 200, "create": 200, "detail": 404, "stage": 404,
                         "edit": 404, "manage": 404, "stats": 404, "start": 404, "end": 404},
    "staff": INSTRUCTOR_STATUSES,
}


def request_view(client, name: str, stream: Stream, **kwargs):
    method, takes_id = VIEWS[name]
    url = reverse(f"livestream:{name}", args=[stream.pk] if takes_id else [])
    return getattr(client, method)(url, **kwargs)


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("who", EXPECTED)
def test_views_answer_each_kind_of_user(client, stream, member, stranger, instructor, other_course, staff, who, name):
    user = {"member": member, "stranger": stranger, "instructor": instructor, "staff": staff,
            "other_instructor": other_course.instructors.get()}[who]
    client.force_login(user)
    response = request_view(client, name, stream)
    assert response.status_code == EXPECTED[who][name]
    if response.status_code == 302:
        assert response.url == reverse("livestream:manage", args=[stream.pk])


@pytest.mark.parametrize("name", VIEWS)
def test_views_redirect_anonymous_visitors_to_login(client, stream, name):
    response = request_view(client, name, stream)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=")
    stream.refresh_from_db()
    assert stream.is_scheduled


@pytest.mark.parametrize("name", ["start", "end"])
def test_state_views_refuse_get(client, stream, instructor, name):
    client.force_login(instructor)
    response = client.get(reverse(f"livestream:{name}", args=[stream.pk]))
    assert response.status_code == 405
    stream.refresh_from_db()
    assert stream.is_scheduled


def test_student_cannot_start_their_courses_stream(client, stream, member):
    client.force_login(member)
    response = client.post(reverse("livestream:start", args=[stream.pk]))
    assert response.status_code == 403
    stream.refresh_from_db()
    assert stream.is_scheduled


def test_stream_list_shows_the_users_courses_streams_in_live_upcoming_and_past(
    client, course, other_course, member, staff, instructor
):
    live = StreamFactory(course=course, title="Live lecture", live=True)
    upcoming = StreamFactory(course=course, title="Tomorrow's seminar")
    past = StreamFactory(course=course, title="Last week", ended=True)
    elsewhere = StreamFactory(course=other_course, title="Python live", live=True)
    client.force_login(member)
    page = client.get(reverse("livestream:list")).content.decode()
    assert "Live lecture" in section(page, "live")
    assert "Tomorrow&#x27;s seminar" in section(page, "upcoming")
    assert "Last week" in section(page, "past")
    assert "Live lecture" not in section(page, "upcoming") + section(page, "past")
    assert "Last week" not in section(page, "live") + section(page, "upcoming")
    assert elsewhere.title not in page
    for stream in (live, upcoming, past):
        assert reverse("livestream:detail", args=[stream.pk]) in page
    assert page.count("sse-connect=") == 1
    client.force_login(staff)
    staff_page = client.get(reverse("livestream:list")).content.decode()
    assert "Python live" in section(staff_page, "live")
    assert "Live lecture" in section(staff_page, "live")


def test_stream_list_for_a_stranger_is_empty(client, stream, stranger):
    client.force_login(stranger)
    page = client.get(reverse("livestream:list")).content.decode()
    assert "Cell biology" not in page
    assert "No streams are scheduled." in page


def test_stream_list_with_htmx_is_the_sections_partial(client, stream, member):
    client.force_login(member)
    response = client.get(reverse("livestream:list"), headers=HX)
    fragment = response.content.decode().strip()
    assert response.status_code == 200
    assert fragment.startswith('<div id="stream-sections"')
    assert "<html" not in fragment
    assert "sse-connect" not in fragment
    assert "Cell biology" in section(fragment, "upcoming")


def test_stream_list_offers_scheduling_only_to_instructors(client, stream, member, instructor):
    new = reverse("livestream:create")
    client.force_login(member)
    assert f'href="{new}"' not in client.get(reverse("livestream:list")).content.decode()
    client.force_login(instructor)
    assert f'href="{new}"' in client.get(reverse("livestream:list")).content.decode()


# --- Channels -------------------------------------------------------------------------------------


def test_can_read_channel_stream_is_for_course_members_and_staff(stream, member, instructor, stranger, staff):
    name = f"stream-{stream.pk}"
    assert can_read_channel(member, name)
    assert can_read_channel(instructor, name)
    assert can_read_channel(staff, name)
    assert not can_read_channel(stranger, name)
    assert not can_read_channel(AnonymousUser(), name)
    assert not can_read_channel(member, f"stream-{stream.pk + 1000}")


def test_can_read_channel_stream_manage_is_for_the_courses_instructors_and_staff(
    stream, member, instructor, stranger, staff, other_course
):
    name = f"stream_manage-{stream.pk}"
    assert can_read_channel(instructor, name)
    assert can_read_channel(staff, name)
    assert not can_read_channel(member, name)
    assert not can_read_channel(stranger, name)
    assert not can_read_channel(other_course.instructors.get(), name)
    assert not can_read_channel(AnonymousUser(), name)


# --- The state machine --------------------------------------------------------------------------


def test_start_stream_before_the_scheduled_time_goes_live(stream, instructor):
    assert stream.starts_at > timezone.now()
    started = do_start_stream(stream, actor=instructor)
    stream.refresh_from_db()
    assert stream.state == Stream.State.LIVE
    assert stream.started_at is not None
    assert stream.started_at < stream.starts_at
    assert started.started_at == stream.started_at


def test_start_stream_again_changes_nothing_and_announces_nothing(
    live_stream, instructor, sent_events, django_capture_on_commit_callbacks
):
    started_at = live_stream.started_at
    with django_capture_on_commit_callbacks(execute=True):
        again = do_start_stream(live_stream, actor=instructor)
    live_stream.refresh_from_db()
    assert (again.state, again.started_at) == (Stream.State.LIVE, started_at)
    assert live_stream.started_at == started_at
    assert sent_events == []


def test_end_stream_that_is_scheduled_raises(stream, instructor):
    with pytest.raises(StreamStateError):
        do_end_stream(stream, actor=instructor)
    stream.refresh_from_db()
    assert (stream.state, stream.ended_at) == (Stream.State.SCHEDULED, None)


def test_end_stream_once_then_again_raises(live_stream, instructor):
    ended = do_end_stream(live_stream, actor=instructor)
    live_stream.refresh_from_db()
    assert live_stream.state == Stream.State.ENDED
    assert live_stream.ended_at is not None
    assert ended.ended_at == live_stream.ended_at
    with pytest.raises(StreamStateError):
        do_end_stream(live_stream, actor=instructor)
    live_stream.refresh_from_db()
    assert live_stream.ended_at == ended.ended_at


def test_start_stream_that_has_ended_raises(live_stream, instructor):
    do_end_stream(live_stream, actor=instructor)
    with pytest.raises(StreamStateError):
        do_start_stream(live_stream, actor=instructor)
    live_stream.refresh_from_db()
    assert live_stream.state == Stream.State.ENDED


@pytest.mark.parametrize("action", [do_start_stream, do_end_stream])
def test_start_and_end_stream_announce_stream_changed_to_viewers_panel_and_course(
    stream, course, instructor, sent_events, django_capture_on_commit_callbacks, action
):
    if action is do_end_stream:
        do_start_stream(stream, actor=instructor)
    with django_capture_on_commit_callbacks(execute=True):
        action(stream, actor=instructor)
    changes = [(channel, event, data) for channel, event, data in sent_events if event == "stream_changed"]
    assert sorted(changes) == sorted([
        (f"stream-{stream.pk}", "stream_changed", str(stream.pk)),
        (f"stream_manage-{stream.pk}", "stream_changed", str(stream.pk)),
        (f"course-{course.pk}", "stream_changed", str(stream.pk)),
    ])


def test_start_stream_announces_nothing_before_commit(
    stream, instructor, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        do_start_stream(stream, actor=instructor)
    assert sent_events == []
    assert len(callbacks) == 3


def test_start_view_goes_live_and_redirects_to_the_panel(client, stream, instructor):
    client.force_login(instructor)
    response = client.post(reverse("livestream:start", args=[stream.pk]))
    assert response.status_code == 302
    assert response.url == reverse("livestream:manage", args=[stream.pk])
    stream.refresh_from_db()
    assert stream.is_live


def test_start_view_with_htmx_redirects_the_client(client, stream, instructor):
    client.force_login(instructor)
    response = client.post(reverse("livestream:start", args=[stream.pk]), headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("livestream:manage", args=[stream.pk])


def test_end_view_of_a_scheduled_stream_shows_a_message_not_a_500(client, stream, instructor):
    client.force_login(instructor)
    response = client.post(reverse("livestream:end", args=[stream.pk]), follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(reverse("livestream:manage", args=[stream.pk]), 302)]
    assert "Only a live stream can be ended." in response.content.decode()
    stream.refresh_from_db()
    assert stream.is_scheduled


def test_start_view_of_an_ended_stream_shows_a_message_not_a_500(client, live_stream, instructor):
    do_end_stream(live_stream, actor=instructor)
    client.force_login(instructor)
    response = client.post(reverse("livestream:start", args=[live_stream.pk]), follow=True)
    assert response.status_code == 200
    assert "This stream has ended; schedule a new one." in response.content.decode()
    live_stream.refresh_from_db()
    assert live_stream.is_ended


def test_end_view_with_htmx_of_a_scheduled_stream_redirects_the_client(client, stream, instructor):
    client.force_login(instructor)
    response = client.post(reverse("livestream:end", args=[stream.pk]), headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("livestream:manage", args=[stream.pk])
    page = client.get(response["HX-Redirect"]).content.decode()
    assert "Only a live stream can be ended." in page


# --- The room key -------------------------------------------------------------------------------


def test_room_key_has_at_least_128_random_bits(stream, course, instructor):
    other = StreamFactory(course=course)
    # token_urlsafe(24): 24 random bytes (192 bits), 32 URL-safe characters.
    assert len(stream.room_key) == 32
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", stream.room_key)
    assert stream.room_key != other.room_key
    assert stream.jitsi_room == f"lms-{stream.pk}-{stream.room_key}"


def test_room_key_is_on_the_live_stream_page_for_members_only(
    client, live_stream, member, stranger, public_jitsi
):
    url = reverse("livestream:detail", args=[live_stream.pk])
    client.force_login(member)
    assert live_stream.room_key in client.get(url).content.decode()
    client.force_login(stranger)
    response = client.get(url)
    assert response.status_code == 404
    assert live_stream.room_key not in response.content.decode()
    stage = client.get(reverse("livestream:stage", args=[live_stream.pk]))
    assert stage.status_code == 404
    assert live_stream.room_key not in stage.content.decode()


def test_room_key_is_not_on_the_list_page_or_the_course_home(client, live_stream, member, instructor):
    for user in (member, instructor):
        client.force_login(user)
        for url in (reverse("livestream:list"), reverse("home")):
            response = client.get(url)
            assert response.status_code == 200
            assert live_stream.room_key not in response.content.decode()
        assert live_stream.room_key not in client.get(reverse("livestream:list"), headers=HX).content.decode()


def test_room_key_is_not_in_the_stage_before_the_start(client, stream, member, instructor):
    for user in (member, instructor):
        client.force_login(user)
        stage = client.get(reverse("livestream:stage", args=[stream.pk])).content.decode()
        assert "Waiting room" in stage
        assert stream.room_key not in stage
        assert stream.room_key not in client.get(reverse("livestream:detail", args=[stream.pk])).content.decode()


def test_room_key_is_not_in_the_control_panel_or_pushed_events(
    client, stream, instructor, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        do_start_stream(stream, actor=instructor)
        do_record_viewer_count(stream.pk, 4)
    assert sent_events
    assert not any(stream.room_key in data for _, _, data in sent_events)
    client.force_login(instructor)
    assert stream.room_key not in client.get(reverse("livestream:manage", args=[stream.pk])).content.decode()


# --- Jitsi ---------------------------------------------------------------------------------------


def test_stage_on_meet_jit_si_hosts_the_instructor_without_a_token(client, live_stream, instructor, public_jitsi):
    client.force_login(instructor)
    stage = client.get(reverse("livestream:stage", args=[live_stream.pk])).content.decode()
    attributes = jitsi_attributes(stage)
    assert attributes["script"] == "https://meet.jit.si/external_api.js"
    assert attributes["domain"] == "meet.jit.si"
    assert attributes["room"] == live_stream.jitsi_room
    assert attributes["host"] == "true"
    assert attributes["name"] == instructor.name
    assert "jwt" not in attributes
    assert FIVE_MINUTE_NOTICE in stage
    assert "Start stream" not in stage
    assert "End stream" in stage


def test_stage_on_meet_jit_si_joins_students_as_guests_without_the_notice(client, live_stream, member, public_jitsi):
    client.force_login(member)
    for name in ("stage", "detail"):
        url = reverse(f"livestream:{name}", args=[live_stream.pk])
        page = client.get(url).content.decode()
        attributes = jitsi_attributes(page)
        assert attributes["host"] == "false"
        assert attributes["room"] == live_stream.jitsi_room
        assert "jwt" not in attributes
        assert FIVE_MINUTE_NOTICE not in page
        assert "End stream" not in page


def test_stage_shows_the_five_minute_notice_on_the_stream_page_to_the_instructor(
    client, live_stream, instructor, public_jitsi
):
    client.force_login(instructor)
    page = client.get(reverse("livestream:detail", args=[live_stream.pk])).content.decode()
    assert FIVE_MINUTE_NOTICE in page
    assert page.count("sse-connect=") == 1


def test_stage_with_jaas_carries_a_token_naming_the_bare_room(client, live_stream, instructor, jaas, rsa_key):
    client.force_login(instructor)
    stage = client.get(reverse("livestream:stage", args=[live_stream.pk])).content.decode()
    attributes = jitsi_attributes(stage)
    assert attributes["domain"] == "8x8.vc"
    assert attributes["script"] == "https://8x8.vc/external_api.js"
    assert attributes["room"] == f"{jaas.JAAS_APP_ID}/{live_stream.jitsi_room}"
    assert attributes["host"] == "true"
    assert FIVE_MINUTE_NOTICE not in stage
    token = attributes["jwt"]
    header = jwt.get_unverified_header(token)
    assert header["kid"] == jaas.JAAS_KID
    assert header["alg"] == "RS256"
    claims = decode_token(token, rsa_key)
    assert claims["room"] == live_stream.jitsi_room
    assert claims["room"] != "*"
    assert claims["sub"] == jaas.JAAS_APP_ID
    assert claims["exp"] - claims["iat"] <= 3600
    assert claims["exp"] > time.time()
    assert claims["context"]["user"]["moderator"] == "true"
    assert claims["context"]["user"]["name"] == instructor.name


def test_stage_with_jaas_gives_students_a_token_without_moderator(client, live_stream, member, jaas, rsa_key):
    client.force_login(member)
    stage = client.get(reverse("livestream:stage", args=[live_stream.pk])).content.decode()
    attributes = jitsi_attributes(stage)
    assert attributes["host"] == "false"
    claims = decode_token(attributes["jwt"], rsa_key)
    assert claims["context"]["user"]["moderator"] == "false"
    assert claims["context"]["user"]["name"] == member.name
    assert claims["room"] == live_stream.jitsi_room
    assert FIVE_MINUTE_NOTICE not in stage


def test_stage_with_jaas_token_is_refused_by_another_key(client, live_stream, member, jaas):
    client.force_login(member)
    token = jitsi_attributes(client.get(reverse("livestream:stage", args=[live_stream.pk])).content.decode())["jwt"]
    with pytest.raises(jwt.InvalidSignatureError):
        decode_token(token, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def test_stage_with_jaas_token_for_one_stream_does_not_name_another(
    client, live_stream, course, instructor, member, jaas, rsa_key
):
    other = do_start_stream(StreamFactory(course=course), actor=instructor)
    client.force_login(member)
    token = jitsi_attributes(client.get(reverse("livestream:stage", args=[live_stream.pk])).content.decode())["jwt"]
    claims = decode_token(token, rsa_key)
    assert claims["room"] == live_stream.jitsi_room
    assert claims["room"] != other.jitsi_room
    assert other.room_key not in str(claims)


def test_stage_of_a_scheduled_stream_with_jaas_has_no_token(client, stream, member, jaas):
    client.force_login(member)
    stage = client.get(reverse("livestream:stage", args=[stream.pk])).content.decode()
    assert 'id="jitsi"' not in stage
    assert "data-jwt" not in stage


def test_stage_of_an_ended_stream_says_so(client, live_stream, instructor, member):
    do_end_stream(live_stream, actor=instructor)
    client.force_login(member)
    stage = client.get(reverse("livestream:stage", args=[live_stream.pk])).content.decode()
    assert "Stream ended" in stage
    assert 'id="jitsi"' not in stage
    assert live_stream.room_key not in stage


# --- Viewer counts and their coalescing --------------------------------------------------------


def test_record_viewer_count_raises_the_peak_and_pushes_the_count_stored(
    stream, pushes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        do_record_viewer_count(stream.pk, 7)
    stream.refresh_from_db()
    assert stream.peak_viewers == 7
    assert [(channel, event, stored) for channel, event, _, stored in pushes] == [
        (f"stream-{stream.pk}", "viewers_changed", True),
        (f"stream_manage-{stream.pk}", "viewers_changed", True),
    ]
    fragment = pushes[0][2]
    assert 'id="viewer-count"' in fragment
    assert 'hx-swap-oob="true"' in fragment
    assert "7 watching" in fragment
    assert "peak 7" in fragment
    assert pushes[1][2] == fragment


def test_record_viewer_count_never_lowers_the_peak(stream, pushes, django_capture_on_commit_callbacks):
    do_record_viewer_count(stream.pk, 7)
    with django_capture_on_commit_callbacks(execute=True):
        do_record_viewer_count(stream.pk, 3)
    stream.refresh_from_db()
    assert stream.peak_viewers == 7
    fragment = pushes[-1][2]
    assert "3 watching" in fragment
    assert "peak 7" in fragment


def test_record_viewer_count_of_a_missing_stream_pushes_nothing(db, pushes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        do_record_viewer_count(999_999, 5)
    assert pushes == []


def test_stream_channel_is_registered_with_the_viewer_count_callback():
    assert channels.occupancy_callback("stream-1") is do_record_viewer_count
    assert channels.occupancy_callback("stream_manage-1") is None


def test_occupancy_of_a_thousand_joins_is_announced_at_most_once_a_second(counted_channel, settings):
    settings.REDIS_URL = ""
    name = "teststream-1"

    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        hub.tasks.append(asyncio.create_task(hub._announce_occupancy()))
        try:
            began = time.monotonic()
            subscribers = [Subscriber(n, [name]) for n in range(1000)]
            for subscriber in subscribers:
                hub.add(subscriber)
            joined = time.monotonic() - began
            await asyncio.sleep(2.5)
            after_joins = list(counted_channel)
            for subscriber in subscribers[:400]:
                hub.remove(subscriber)
            await asyncio.sleep(1.5)
            return joined, after_joins, list(counted_channel[len(after_joins):])
        finally:
            await hub.stop()

    joined, after_joins, after_leaves = asyncio.run(scenario())
    assert joined < 0.5
    assert 1 <= len(after_joins) <= 3
    assert [(pk, count) for pk, count, _ in after_joins][-1] == (1, 1000)
    assert after_leaves
    assert after_leaves[0][:2] == (1, 600)


def test_occupancy_is_not_announced_while_it_does_not_change(counted_channel, settings):
    settings.REDIS_URL = ""

    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        hub.tasks.append(asyncio.create_task(hub._announce_occupancy()))
        try:
            hub.add(Subscriber(1, ["teststream-2"]))
            await asyncio.sleep(3.2)
        finally:
            await hub.stop()

    asyncio.run(scenario())
    assert [(pk, count) for pk, count, _ in counted_channel] == [(2, 1)]


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
def test_occupancy_across_two_processes_is_summed_in_redis_and_coalesced(counted_channel, settings):
    from redis.asyncio import Redis

    name = "teststream-3"
    keys = [redis_key(f"occupancy:{name}"), redis_key(f"occupancy-lock:{name}")]

    async def scenario():
        loop = asyncio.get_running_loop()
        hubs = [Hub(loop), Hub(loop)]
        for hub in hubs:
            hub.redis = Redis.from_url(settings.REDIS_URL)
            hub.redis_up = True
        await hubs[0].redis.delete(*keys)
        for hub in hubs:
            hub.tasks.append(loop.create_task(hub._announce_occupancy()))
        try:
            began = time.monotonic()
            for n in range(600):
                hubs[0].add(Subscriber(n, [name]))
            leaving = [Subscriber(n, [name]) for n in range(600, 1000)]
            for subscriber in leaving:
                hubs[1].add(subscriber)
            joined = time.monotonic() - began
            await asyncio.sleep(3.5)
            after_joins = list(counted_channel)
            for subscriber in leaving:
                hubs[1].remove(subscriber)
            await asyncio.sleep(2.5)
            return began, joined, after_joins, list(counted_channel[len(after_joins):])
        finally:
            await hubs[0].redis.delete(*keys)
            for hub in hubs:
                await hub.stop()

    began, joined, after_joins, after_leaves = asyncio.run(scenario())
    assert joined < 0.5
    times = [when for _, _, when in after_joins + after_leaves]
    assert all(sum(1 for other in times if when <= other < when + 1.0) <= 3 for when in times)
    assert 1 <= len(after_joins) <= 4  # ~3.5 s at most one a second
    assert [(pk, count) for pk, count, _ in after_joins][-1] == (3, 1000)
    assert after_leaves
    assert [(pk, count) for pk, count, _ in after_leaves][-1] == (3, 600)


# --- The form ------------------------------------------------------------------------------------


def form_data(course, **changes):
    data = {
        "course": course.pk,
        "title": "Membranes, live",
        "description": "Bring questions.",
        "starts_at": "2026-12-01T10:00",
        "ends_at": "2026-12-01T11:00",
        "chat_enabled": "on",
        "qa_enabled": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_stream_create_with_end_before_start_shows_the_error_and_keeps_the_title(client, course, instructor):
    client.force_login(instructor)
    data = form_data(course, title="Osmosis & diffusion", ends_at="2026-12-01T09:00")
    response = client.post(reverse("livestream:create"), data)
    page = response.content.decode()
    assert response.status_code == 200
    assert "The end must be after the start." in page
    assert 'value="Osmosis &amp; diffusion"' in page
    assert not Stream.objects.exists()


def test_stream_create_refuses_a_course_the_instructor_does_not_teach(client, course, other_course, instructor):
    client.force_login(instructor)
    response = client.post(reverse("livestream:create"), form_data(other_course))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Stream.objects.exists()


def test_stream_create_offers_only_the_instructors_courses(client, course, other_course, instructor):
    client.force_login(instructor)
    page = client.get(reverse("livestream:create")).content.decode()
    assert f'<option value="{course.pk}"' in page
    assert f'<option value="{other_course.pk}"' not in page


def test_stream_create_reads_times_in_the_users_time_zone(client, course, instructor):
    instructor.timezone = "Asia/Tokyo"
    instructor.save()
    client.force_login(instructor)
    response = client.post(reverse("livestream:create"), form_data(course))
    stream = Stream.objects.get()
    assert response.status_code == 302
    assert stream.starts_at == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert stream.ends_at == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_stream_edit_shows_stored_times_in_the_users_time_zone(client, course, instructor):
    stream = StreamFactory(
        course=course,
        starts_at=datetime(2026, 12, 1, 1, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 1, 2, 30, tzinfo=UTC),
    )
    instructor.timezone = "Asia/Tokyo"
    instructor.save()
    client.force_login(instructor)
    page = client.get(reverse("livestream:edit", args=[stream.pk])).content.decode()
    assert 'value="2026-12-01T10:00"' in page
    assert 'value="2026-12-01T11:30"' in page
    assert "Asia/Tokyo" in page


def test_stream_edit_saves_and_redirects_to_the_panel(
    client, stream, course, instructor, sent_events, django_capture_on_commit_callbacks
):
    client.force_login(instructor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("livestream:edit", args=[stream.pk]), form_data(course, title="Renamed"))
    assert response.status_code == 302
    assert response.url == reverse("livestream:manage", args=[stream.pk])
    stream.refresh_from_db()
    assert stream.title == "Renamed"
    assert (f"stream-{stream.pk}", "stream_changed", str(stream.pk)) in sent_events


def test_stream_create_redirects_to_the_panel_and_opens_a_stream_chat_room(client, course, instructor):
    client.force_login(instructor)
    response = client.post(reverse("livestream:create"), form_data(course))
    stream = Stream.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("livestream:manage", args=[stream.pk])
    assert (stream.title, stream.course, stream.created_by) == ("Membranes, live", course, instructor)
    assert stream.chat_room is not None
    assert stream.chat_room.kind == Room.Kind.STREAM
    assert stream.chat_room.course == course
    assert Room.objects.filter(kind=Room.Kind.STREAM).count() == 1


def test_stream_create_without_chat_opens_no_room(client, course, instructor):
    client.force_login(instructor)
    response = client.post(reverse("livestream:create"), form_data(course, chat_enabled=None))
    stream = Stream.objects.get()
    assert response.status_code == 302
    assert not stream.chat_enabled
    assert stream.chat_room is None
    assert not Room.objects.filter(kind=Room.Kind.STREAM).exists()


# --- The stream page's live chat --------------------------------------------------------------


def test_stream_page_chat_uses_the_chat_composer(client, live_stream, member):
    room = live_stream.chat_room
    MessageFactory(room=room, author=member, body="Hello from the stream")
    client.force_login(member)
    page = client.get(reverse("livestream:detail", args=[live_stream.pk])).content.decode()
    assert f'hx-post="{reverse("chat:message_create", args=[room.pk])}"' in page
    assert f'action="/chat/{room.pk}/messages/"' in page
    assert '<label for="id_body" class="visually-hidden">Message</label>' in page
    assert "Hello from the stream" in page
    assert f"channel=room-{room.pk}" in page


def test_stream_page_chat_accepts_a_students_message(client, live_stream, member):
    room = live_stream.chat_room
    client.force_login(member)
    response = client.post(reverse("chat:message_create", args=[room.pk]), {"body": "Great lecture"}, headers=HX)
    assert response.status_code == 204
    assert Message.objects.filter(room=room, author=member, body="Great lecture").exists()


def test_stream_page_chat_is_404_for_a_stranger(client, live_stream, stranger):
    room = live_stream.chat_room
    client.force_login(stranger)
    response = client.post(reverse("chat:message_create", args=[room.pk]), {"body": "Let me in"}, headers=HX)
    assert response.status_code == 404
    assert not Message.objects.filter(room=room).exists()


def test_stream_chat_room_is_not_listed_on_chat_home(client, live_stream, course, member):
    course_room = RoomFactory(course=course, name="General")
    client.force_login(member)
    page = client.get(reverse("chat:home")).content.decode()
    assert f'id="room-summary-{course_room.pk}"' in page
    assert f'id="room-summary-{live_stream.chat_room_id}"' not in page
    assert reverse("chat:room", args=[live_stream.chat_room_id]) not in page


def test_stream_page_without_chat_has_no_composer(client, course, instructor, member):
    stream = do_start_stream(StreamFactory(course=course, chat_enabled=False), actor=instructor)
    client.force_login(member)
    page = client.get(reverse("livestream:detail", args=[stream.pk])).content.decode()
    assert 'id="composer"' not in page
    assert "no-chat" in page


def test_stream_page_notes_each_viewer_once(client, live_stream, member):
    client.force_login(member)
    for _ in range(2):
        client.get(reverse("livestream:detail", args=[live_stream.pk]))
    assert list(live_stream.viewers.values_list("user", flat=True)) == [member.pk]


# --- Queries per stream page --------------------------------------------------------------------


def stream_page_queries(client, course, instructor, messages: int) -> int:
    """Queries for a repeat visit to a live stream page whose chat has `messages` messages."""
    stream = do_start_stream(do_create_stream(
        course, creator=instructor, title=f"{messages} messages",
        starts_at=timezone.now(), ends_at=timezone.now() + timedelta(hours=1),
    ), actor=instructor)
    for n in range(messages):  # each by a different author, some replying: no query per message
        reply_to = Message.objects.filter(room=stream.chat_room).last() if n % 3 else None
        MessageFactory(room=stream.chat_room, body=f"message {n}", reply_to=reply_to)
    url = reverse("livestream:detail", args=[stream.pk])
    assert client.get(url).status_code == 200  # the first visit also notes the viewer
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert len(re.findall(r'<li id="message-\d+" class="message"', response.content.decode())) == messages
    return len(queries)


def test_stream_page_queries_do_not_grow_with_chat_messages(client, course, instructor, member):
    client.force_login(member)
    few = stream_page_queries(client, course, instructor, 5)
    many = stream_page_queries(client, course, instructor, 30)
    assert few == many
    assert many <= STREAM_PAGE_QUERIES


def test_stream_page_queries_are_bounded(client, live_stream, member, django_assert_max_num_queries):
    for n in range(30):
        MessageFactory(room=live_stream.chat_room, body=f"message {n}")
    client.force_login(member)
    with django_assert_max_num_queries(STREAM_PAGE_QUERIES + 3):  # first visit: the viewer row is inserted
        assert client.get(reverse("livestream:detail", args=[live_stream.pk])).status_code == 200
    with django_assert_max_num_queries(STREAM_PAGE_QUERIES):
        assert client.get(reverse("livestream:detail", args=[live_stream.pk])).status_code == 200


# --- Sample data ---------------------------------------------------------------------------------


def test_sample_data_has_one_live_one_upcoming_and_one_past_stream_and_is_idempotent(db):
    for _ in range(2):
        out = StringIO()
        call_command("create_sample_data", stdout=out)
        assert "instructor ines " in out.getvalue()
        streams = Stream.objects.filter(course=Course.objects.get(code="BIO101"))
        assert sorted(streams.values_list("state", flat=True)) == ["ended", "live", "scheduled"]
    assert Stream.objects.count() == 3
    assert Room.objects.filter(kind=Room.Kind.STREAM).count() == 3
    live = Stream.objects.get(state=Stream.State.LIVE)
    assert live.chat_room.messages.exists()
    assert Stream.objects.get(state=Stream.State.ENDED).ended_at is not None
    assert Stream.objects.get(state=Stream.State.SCHEDULED).starts_at > timezone.now()


def test_stream_edit_to_another_course_moves_its_chat_with_it(client, stream, course, instructor, member):
    history = CourseFactory(code="HIS210", instructors=[instructor])
    historian = UserFactory(username="hana")
    history.enrolments.create(user=historian)
    client.force_login(instructor)
    response = client.post(reverse("livestream:edit", args=[stream.pk]), form_data(history, title="Moved"))
    assert response.status_code == 302
    stream.refresh_from_db()
    assert stream.course == history
    assert stream.chat_room.course == history
    post = reverse("chat:message_create", args=[stream.chat_room_id])
    client.force_login(historian)
    assert client.post(post, {"body": "In the right course"}, headers=HX).status_code == 204
    client.force_login(member)
    assert client.get(reverse("chat:room", args=[stream.chat_room_id])).status_code == 404
    assert client.post(post, {"body": "Not mine any more"}, headers=HX).status_code == 404
