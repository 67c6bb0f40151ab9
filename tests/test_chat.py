"""lms.chat: actions and their pushes, access to every view, htmx responses, limits, search, moderation."""

import html
import json
import re
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lms import ratelimit
from lms.chat.actions import (
    do_create_room,
    do_delete_message,
    do_edit_message,
    do_get_or_create_direct_room,
    do_mute_member,
    do_post_message,
    do_unmute_member,
)
from lms.chat.models import Message, ModerationEntry, Mute, Room
from lms.courses.models import Course
from lms.realtime import can_read_channel
from tests.factories import CourseFactory, InstructorFactory, MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
XSS_BODIES = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))"]


@pytest.fixture(autouse=True)
def fresh_flood_counts():
    # In memory this forgets every count; with Redis, counts are per room and each test has new rooms.
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def room(course):
    return RoomFactory(course=course, name="General")


@pytest.fixture
def classmate(course):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


@pytest.fixture
def staff(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def other_course(db):
    return CourseFactory(code="CS102", instructors=[InstructorFactory(username="omar")])


@pytest.fixture
def other_room(other_course):
    return RoomFactory(course=other_course, name="General")


@pytest.fixture
def message(room, member):
    return MessageFactory(room=room, author=member, body="Hello from Ana")


@pytest.fixture
def direct(member, classmate):
    return do_get_or_create_direct_room(member, other=classmate)


def post_message(client, room, body, *, htmx=True, **data):
    return client.post(
        reverse("chat:message_create", args=[room.pk]), {"body": body, **data}, headers=HX if htmx else {}
    )


def message_ids(markup: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li id="message-(\d+)"', markup)]


def textarea(markup: str) -> str:
    return re.search(r'<textarea id="id_body"[^>]*>(.*?)</textarea>', markup, re.DOTALL).group(1)


def summary_title(fragment: str) -> str:
    return html.unescape(re.search(r'class="room-name"><bdi>(.*?)</bdi>', fragment).group(1))


# --- Actions: each saves, then pushes once the transaction commits ------------------------------


def test_post_message_pushes_message_to_room_and_summary_to_course(
    room, course, member, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message, created = do_post_message(room, author=member, body="Hi")
    assert created
    assert [(channel, event) for channel, event, _ in sent_events] == [
        (f"room-{room.pk}", "message_created"),
        (f"course-{course.pk}", "room_summary"),
    ]
    assert f'id="message-{message.pk}"' in sent_events[0][2]
    assert f'id="room-summary-{room.pk}"' in sent_events[1][2]
    assert 'hx-swap-oob="true"' in sent_events[1][2]


def test_post_message_does_not_push_before_commit(room, member, sent_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        do_post_message(room, author=member, body="Hi")
    assert sent_events == []
    assert callbacks


def test_post_message_in_direct_room_pushes_summary_to_each_participant_titled_with_the_other(
    direct, member, classmate, sent_events, django_capture_on_commit_callbacks
):
    member.display_name = "Ana Souza"
    member.save()
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = do_post_message(Room.objects.get(pk=direct.pk), author=member, body="Library at 4?")
    assert (f"room-{direct.pk}", "message_created") == sent_events[0][:2]
    summaries = {channel: data for channel, event, data in sent_events if event == "room_summary"}
    assert set(summaries) == {f"user-{member.pk}", f"user-{classmate.pk}"}
    assert summary_title(summaries[f"user-{member.pk}"]) == "Ben Okafor"
    assert summary_title(summaries[f"user-{classmate.pk}"]) == "Ana Souza"
    assert not any(channel.startswith("course-") for channel, _, _ in sent_events)


def test_post_message_retried_with_same_client_token_is_stored_once_and_pushed_once(
    room, member, sent_events, django_capture_on_commit_callbacks
):
    token = uuid.uuid4()
    first, created = do_post_message(room, author=member, body="Once", client_token=token)
    assert created
    with django_capture_on_commit_callbacks(execute=True):
        again, created_again = do_post_message(room, author=member, body="Once", client_token=token)
    assert again == first
    assert not created_again
    assert Message.objects.filter(room=room).count() == 1
    assert sent_events == []


def test_post_message_ignores_reply_to_from_another_room(room, other_room, member, instructor):
    elsewhere = MessageFactory(room=other_room, author=instructor)
    here = MessageFactory(room=room, author=instructor)
    message, _ = do_post_message(room, author=member, body="Reply", reply_to=elsewhere)
    assert message.reply_to is None
    reply, _ = do_post_message(room, author=member, body="Reply", reply_to=here)
    assert reply.reply_to == here


def test_edit_message_pushes_update_out_of_band_marked_edited(
    message, room, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        do_edit_message(message, body="Hello, edited")
    [(channel, event, fragment)] = sent_events
    assert (channel, event) == (f"room-{room.pk}", "message_updated")
    assert f'id="message-{message.pk}"' in fragment
    assert 'hx-swap-oob="true"' in fragment
    assert "(edited)" in fragment
    assert "Hello, edited" in fragment
    message.refresh_from_db()
    assert message.edited is not None


def test_delete_message_by_author_pushes_placeholder_and_logs_nothing(
    message, member, room, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_message(message, actor=member)
    [(channel, event, fragment)] = sent_events
    assert (channel, event) == (f"room-{room.pk}", "message_updated")
    assert "Message deleted" in fragment
    assert 'hx-swap-oob="true"' in fragment
    assert "Hello from Ana" not in fragment
    message.refresh_from_db()
    assert (message.body, message.body_html) == ("", "")
    assert message.is_deleted
    assert ModerationEntry.objects.count() == 0


def test_delete_message_by_moderator_logs_the_deleted_text(
    message, member, instructor, course, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_message(message, actor=instructor)
    assert [event for _, event, _ in sent_events] == ["message_updated"]
    assert "Message deleted" in sent_events[0][2]
    [entry] = ModerationEntry.objects.all()
    assert (entry.course, entry.actor, entry.target, entry.action) == (
        course, instructor, member, ModerationEntry.Action.DELETE
    )
    assert entry.detail == "Hello from Ana"
    assert entry.message == message


def test_mute_member_logs_and_tells_the_member(
    course, instructor, member, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        mute = do_mute_member(course, actor=instructor, user=member, until=None)
    assert sent_events == [(f"user-{member.pk}", "mute_changed", "")]
    assert list(Mute.objects.active()) == [mute]
    [entry] = ModerationEntry.objects.all()
    assert (entry.actor, entry.target, entry.action) == (instructor, member, ModerationEntry.Action.MUTE)


def test_unmute_member_logs_and_tells_the_member(
    course, instructor, member, sent_events, django_capture_on_commit_callbacks
):
    do_mute_member(course, actor=instructor, user=member, until=None)
    with django_capture_on_commit_callbacks(execute=True):
        lifted = do_unmute_member(course, actor=instructor, user=member)
    assert lifted == 1
    assert sent_events == [(f"user-{member.pk}", "mute_changed", "")]
    assert not Mute.objects.active().exists()
    assert ModerationEntry.objects.filter(action=ModerationEntry.Action.UNMUTE, actor=instructor, target=member).exists()


def test_create_room_pushes_course_room_created(course, instructor, sent_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        room = do_create_room(course, creator=instructor, name="Week 5")
    [(channel, event, fragment)] = sent_events
    assert (channel, event) == (f"course-{course.pk}", "course_room_created")
    assert f'id="room-summary-{room.pk}"' in fragment
    assert "Week 5" in fragment


def test_get_or_create_direct_room_is_one_room_per_pair(
    member, classmate, sent_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        room = do_get_or_create_direct_room(member, other=classmate)
    assert do_get_or_create_direct_room(classmate, other=member) == room
    assert Room.objects.filter(kind=Room.Kind.DIRECT).count() == 1
    assert set(room.participants.all()) == {member, classmate}
    assert sorted(channel for channel, event, _ in sent_events if event == "direct_room_created") == sorted(
        [f"user-{member.pk}", f"user-{classmate.pk}"]
    )


# --- Access: every view, for every kind of visitor ------------------------------------------------

ROOM_VIEWS = [
    "room", "history", "message_create", "composer", "search",
    "message_detail", "message_edit_get", "message_edit_post", "message_delete",
]
COURSE_VIEWS = ["room_create", "moderation", "mute", "unmute"]


def room_endpoint(name, room, message):
    return {
        "room": ("get", reverse("chat:room", args=[room.pk]), None),
        "history": ("get", reverse("chat:history", args=[room.pk]) + f"?before={message.pk + 1}", None),
        "message_create": ("post", reverse("chat:message_create", args=[room.pk]), {"body": "New post"}),
        "composer": ("get", reverse("chat:composer", args=[room.pk]), None),
        "search": ("get", reverse("chat:search", args=[room.pk]) + "?q=Hello", None),
        "message_detail": ("get", reverse("chat:message", args=[message.pk]), None),
        "message_edit_get": ("get", reverse("chat:message_edit", args=[message.pk]), None),
        "message_edit_post": ("post", reverse("chat:message_edit", args=[message.pk]), {"body": "Changed"}),
        "message_delete": ("post", reverse("chat:message_delete", args=[message.pk]), None),
    }[name]


def course_endpoint(name, course, target):
    return {
        "room_create": ("post", reverse("chat:room_create", args=[course.pk]), {"name": "Week 5"}),
        "moderation": ("get", reverse("chat:moderation", args=[course.pk]), None),
        "mute": ("post", reverse("chat:mute", args=[course.pk]), {"user": target.pk, "duration": "1h"}),
        "unmute": ("post", reverse("chat:unmute", args=[course.pk, target.pk]), None),
    }[name]


def call(client, endpoint, *, htmx=False):
    method, url, data = endpoint
    return getattr(client, method)(url, data or {}, headers=HX if htmx else {})


def unchanged(message) -> bool:
    """No message posted, edited or deleted, no room created, nobody muted."""
    fresh = Message.objects.get(pk=message.pk)
    return (
        Message.objects.count() == 1
        and (fresh.body, fresh.edited, fresh.deleted) == (message.body, None, None)
        and not Room.objects.filter(name="Week 5").exists()
        and not Mute.objects.exists()
    )


MEMBER_OWN_MESSAGE = {
    "room": 200, "history": 200, "message_create": 204, "composer": 200, "search": 200,
    "message_detail": 200, "message_edit_get": 200, "message_edit_post": 204, "message_delete": 204,
}
# Someone else's message in a course room they moderate.
MODERATOR = {**MEMBER_OWN_MESSAGE, "message_edit_get": 403, "message_edit_post": 403}


@pytest.mark.parametrize("name", ROOM_VIEWS)
def test_room_views_answer_a_member(client, room, message, member, name):
    client.force_login(member)
    assert call(client, room_endpoint(name, room, message), htmx=True).status_code == MEMBER_OWN_MESSAGE[name]


@pytest.mark.parametrize("name", ROOM_VIEWS)
def test_room_views_answer_the_instructor(client, room, message, instructor, name):
    client.force_login(instructor)
    assert call(client, room_endpoint(name, room, message), htmx=True).status_code == MODERATOR[name]


@pytest.mark.parametrize("name", ROOM_VIEWS)
def test_room_views_answer_staff_in_a_course_room(client, room, message, staff, name):
    client.force_login(staff)
    assert call(client, room_endpoint(name, room, message), htmx=True).status_code == MODERATOR[name]


@pytest.mark.parametrize("name", ROOM_VIEWS)
def test_room_views_are_404_for_a_non_member(client, room, message, stranger, name):
    client.force_login(stranger)
    assert call(client, room_endpoint(name, room, message), htmx=True).status_code == 404
    assert unchanged(message)


@pytest.mark.parametrize("name", ROOM_VIEWS)
def test_room_views_are_404_for_staff_in_other_peoples_direct_rooms(client, direct, member, staff, name):
    message = MessageFactory(room=direct, author=member, body="Just between us")
    client.force_login(staff)
    response = call(client, room_endpoint(name, direct, message), htmx=True)
    assert response.status_code == 404
    assert b"Just between us" not in response.content
    assert unchanged(message)


@pytest.mark.parametrize("name", ROOM_VIEWS)
def test_room_views_answer_a_participant_of_a_direct_room(client, direct, member, name):
    message = MessageFactory(room=direct, author=member)
    client.force_login(member)
    assert call(client, room_endpoint(name, direct, message), htmx=True).status_code == MEMBER_OWN_MESSAGE[name]


@pytest.mark.parametrize("name", ROOM_VIEWS + COURSE_VIEWS + ["home", "direct_start"])
def test_views_redirect_anonymous_visitors_to_login(client, room, message, course, member, name):
    if name == "home":
        endpoint = ("get", reverse("chat:home"), None)
    elif name == "direct_start":
        endpoint = ("post", reverse("chat:direct", args=[member.pk]), None)
    elif name in COURSE_VIEWS:
        endpoint = course_endpoint(name, course, member)
    else:
        endpoint = room_endpoint(name, room, message)
    response = call(client, endpoint)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=")
    assert unchanged(message)


@pytest.mark.parametrize("name", COURSE_VIEWS)
def test_course_views_are_403_for_students_of_the_course(client, course, message, member, classmate, name):
    client.force_login(member)
    assert call(client, course_endpoint(name, course, classmate)).status_code == 403
    assert unchanged(message)


@pytest.mark.parametrize("name", COURSE_VIEWS)
def test_course_views_are_404_for_a_course_that_is_not_theirs(client, other_course, message, member, name):
    other_student = UserFactory(username="eun")
    other_course.enrolments.create(user=other_student)
    client.force_login(member)
    assert call(client, course_endpoint(name, other_course, other_student)).status_code == 404
    assert unchanged(message)


@pytest.mark.parametrize("name", COURSE_VIEWS)
def test_course_views_are_404_for_a_stranger(client, course, message, member, stranger, name):
    client.force_login(stranger)
    assert call(client, course_endpoint(name, course, member)).status_code == 404
    assert unchanged(message)


@pytest.mark.parametrize("who", ["instructor", "staff"])
@pytest.mark.parametrize(("name", "status"), [("room_create", 302), ("moderation", 200), ("mute", 302), ("unmute", 302)])
def test_course_views_answer_instructors_and_staff(client, course, member, instructor, staff, who, name, status):
    client.force_login({"instructor": instructor, "staff": staff}[who])
    assert call(client, course_endpoint(name, course, member)).status_code == status


def test_home_lists_only_the_rooms_a_user_may_read(client, room, other_room, direct, member, stranger, staff):
    client.force_login(member)
    page = client.get(reverse("chat:home")).content.decode()
    assert f'id="room-summary-{room.pk}"' in page
    assert f'id="room-summary-{direct.pk}"' in page
    assert f'id="room-summary-{other_room.pk}"' not in page
    client.force_login(stranger)
    page = client.get(reverse("chat:home")).content.decode()
    assert "room-summary-" not in page
    client.force_login(staff)
    page = client.get(reverse("chat:home")).content.decode()
    assert f'id="room-summary-{other_room.pk}"' in page
    assert f'id="room-summary-{direct.pk}"' not in page


def test_edit_of_someone_elses_message_is_403(client, message, classmate):
    client.force_login(classmate)
    assert client.get(reverse("chat:message_edit", args=[message.pk])).status_code == 403
    assert client.post(reverse("chat:message_edit", args=[message.pk]), {"body": "Mine now"}).status_code == 403
    message.refresh_from_db()
    assert message.body == "Hello from Ana"


def test_delete_of_someone_elses_message_by_a_student_is_403(client, message, classmate):
    client.force_login(classmate)
    assert client.post(reverse("chat:message_delete", args=[message.pk])).status_code == 403
    message.refresh_from_db()
    assert not message.is_deleted


def test_delete_of_someone_elses_message_by_the_instructor_is_allowed_and_logged(client, message, instructor):
    client.force_login(instructor)
    response = client.post(reverse("chat:message_delete", args=[message.pk]), headers=HX)
    assert response.status_code == 204
    message.refresh_from_db()
    assert message.is_deleted
    assert ModerationEntry.objects.get().detail == "Hello from Ana"


def test_delete_in_a_direct_room_of_the_other_persons_message_is_403(client, direct, member, classmate):
    message = MessageFactory(room=direct, author=classmate)
    client.force_login(member)
    assert client.post(reverse("chat:message_delete", args=[message.pk])).status_code == 403


def test_edit_of_a_deleted_message_is_403(client, message, member):
    do_delete_message(message, actor=member)
    client.force_login(member)
    assert client.post(reverse("chat:message_edit", args=[message.pk]), {"body": "Back"}).status_code == 403


# --- The event stream: who may read a room's channel -----------------------------------------------


def test_can_read_channel_room_is_for_members_and_staff(room, member, instructor, stranger, staff):
    name = f"room-{room.pk}"
    assert can_read_channel(member, name)
    assert can_read_channel(instructor, name)
    assert can_read_channel(staff, name)
    assert not can_read_channel(stranger, name)
    assert not can_read_channel(AnonymousUser(), name)


def test_can_read_channel_direct_room_is_for_its_participants_only(direct, member, classmate, instructor, staff):
    name = f"room-{direct.pk}"
    assert can_read_channel(member, name)
    assert can_read_channel(classmate, name)
    assert not can_read_channel(instructor, name)
    assert not can_read_channel(staff, name)
    assert not can_read_channel(AnonymousUser(), name)


def test_can_read_channel_missing_room_is_refused(room, member):
    assert not can_read_channel(member, f"room-{room.pk + 1000}")


# --- Views, plain and with HX-Request ---------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_room_page_is_a_full_page_with_one_event_stream(client, room, message, member, htmx):
    client.force_login(member)
    response = client.get(reverse("chat:room", args=[room.pk]), headers=HX if htmx else {})
    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" in page
    assert page.count("sse-connect=") == 1
    assert f"channel=room-{room.pk}" in page
    assert 'id="composer"' in page
    assert message_ids(page) == [message.pk]


@pytest.mark.parametrize("htmx", [False, True])
def test_history_is_a_partial_of_messages(client, room, message, member, htmx):
    client.force_login(member)
    url = reverse("chat:history", args=[room.pk]) + f"?before={message.pk + 1}"
    response = client.get(url, headers=HX if htmx else {})
    fragment = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in fragment
    assert 'id="composer"' not in fragment
    assert message_ids(fragment) == [message.pk]


def test_history_without_before_is_400(client, room, member):
    client.force_login(member)
    assert client.get(reverse("chat:history", args=[room.pk])).status_code == 400


def test_message_create_with_htmx_is_204_with_message_sent_and_stores_it(client, room, member):
    client.force_login(member)
    response = post_message(client, room, "Hello, room")
    assert response.status_code == 204
    assert "message-sent" in json.loads(response["HX-Trigger"])
    [message] = Message.objects.all()
    assert (message.room, message.author, message.body) == (room, member, "Hello, room")


def test_message_create_without_htmx_redirects_to_the_room(client, room, member):
    client.force_login(member)
    response = post_message(client, room, "Hello, room", htmx=False)
    assert response.status_code == 302
    assert response.url == reverse("chat:room", args=[room.pk])
    assert Message.objects.get().body == "Hello, room"


def test_message_create_pushes_the_message_to_the_room(
    client, room, member, sent_events, django_capture_on_commit_callbacks
):
    client.force_login(member)
    with django_capture_on_commit_callbacks(execute=True):
        post_message(client, room, "Pushed")
    message = Message.objects.get()
    assert (f"room-{room.pk}", "message_created") == sent_events[0][:2]
    assert f'id="message-{message.pk}"' in sent_events[0][2]


def test_message_create_with_a_retried_client_token_stores_once(client, room, member):
    client.force_login(member)
    token = str(uuid.uuid4())
    assert post_message(client, room, "Once", client_token=token).status_code == 204
    assert post_message(client, room, "Once", client_token=token).status_code == 204
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("  \n  ", "Write a message first."),
        ("x" * 4001, "Keep it to 4,000 characters (this one has 4,001)."),
        ("<b>a</b>\x00b", "Null characters are not allowed."),
        ("<b>ring</b> \x07 the bell", "Remove the control characters from the message."),
    ],
    ids=["empty", "too-long", "nul", "control"],
)
def test_message_create_form_error_keeps_the_text(client, room, member, typed, error):
    client.force_login(member)
    response = post_message(client, room, typed)
    fragment = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#composer"
    assert response["HX-Reswap"] == "outerHTML"
    assert 'role="alert"' in fragment
    assert html.escape(error) in fragment
    assert textarea(fragment) == html.escape(typed)
    assert 'aria-invalid="true"' in fragment
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "\x00" * 50,
        "Z" + "\u0301" * 200,  # Zalgo
        "\u200b\u200d\ufeff",  # invisible only
        "\u202eevil\u202c text",  # right-to-left override
        "\U0001f600" * 4000,  # 4,000 emoji: 16,000 bytes
        "\U0001f600" * 4001,
        "\ufffe\uffff \U0010ffff",  # noncharacters
        "\u2028\u2029line separators",
        "e\u0301" * 2000,  # decomposed: NFC halves its length
    ],
)
def test_message_create_never_answers_500_to_odd_text(client, room, member, body):
    client.force_login(member)
    response = post_message(client, room, body)
    assert response.status_code in (200, 204, 400)
    if response.status_code != 204:
        assert not Message.objects.exists()


def test_message_create_survives_invalid_utf8(client, room, member):
    client.force_login(member)
    response = client.post(
        reverse("chat:message_create", args=[room.pk]),
        "body=%FF%FE%ED%A0%80",
        content_type="application/x-www-form-urlencoded",
        headers=HX,
    )
    assert response.status_code in (200, 204)


@pytest.mark.parametrize("value", ["\u00b2", "\u2460", "\U0001d7d9", "1\u00b9", "99999999999999999999999999"])
def test_room_views_ignore_odd_numbers_in_parameters(client, room, message, member, value):
    client.force_login(member)
    assert client.get(reverse("chat:room", args=[room.pk]), {"around": value}).status_code in (200, 404)
    assert client.get(reverse("chat:history", args=[room.pk]), {"before": value}).status_code in (200, 400)
    assert client.get(reverse("chat:composer", args=[room.pk]), {"reply_to": value}).status_code == 200
    response = post_message(client, room, "Still sent", reply_to=value)
    assert response.status_code in (200, 204)


def test_composer_replying_shows_the_quoted_message_and_keeps_the_text(client, room, message, classmate):
    client.force_login(classmate)
    response = client.get(reverse("chat:composer", args=[room.pk]), {"reply_to": message.pk, "body": "<i>draft</i>"})
    fragment = response.content.decode()
    assert f'name="reply_to" value="{message.pk}"' in fragment
    assert "Hello from Ana" in fragment
    assert textarea(fragment) == html.escape("<i>draft</i>")


def test_message_create_with_reply_to_quotes_it(client, room, message, classmate):
    client.force_login(classmate)
    post_message(client, room, "Agreed", reply_to=message.pk)
    reply = Message.objects.get(body="Agreed")
    assert reply.reply_to == message
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert f'data-jump="message-{message.pk}"' in page


def test_message_detail_without_htmx_redirects_to_it_in_the_room(client, room, message, member):
    client.force_login(member)
    response = client.get(reverse("chat:message", args=[message.pk]))
    assert response.status_code == 302
    assert response.url == reverse("chat:room", args=[room.pk]) + f"?around={message.pk}#message-{message.pk}"
    fragment = client.get(reverse("chat:message", args=[message.pk]), headers=HX).content.decode()
    assert message_ids(fragment) == [message.pk]
    assert "<html" not in fragment


def test_message_edit_get_is_the_edit_form_with_the_text(client, message, member):
    client.force_login(member)
    fragment = client.get(reverse("chat:message_edit", args=[message.pk]), headers=HX).content.decode()
    assert f'id="message-{message.pk}"' in fragment
    assert "Hello from Ana</textarea>" in fragment


def test_message_edit_post_saves_and_without_htmx_redirects(client, room, message, member):
    client.force_login(member)
    response = client.post(reverse("chat:message_edit", args=[message.pk]), {"body": "Hello *again*"})
    assert response.status_code == 302
    assert response.url == reverse("chat:room", args=[room.pk])
    message.refresh_from_db()
    assert message.body == "Hello *again*"
    assert "<em>again</em>" in message.body_html
    assert message.edited is not None


def test_message_edit_post_with_bad_text_keeps_it_and_saves_nothing(client, message, member):
    client.force_login(member)
    response = client.post(reverse("chat:message_edit", args=[message.pk]), {"body": "x" * 4001}, headers=HX)
    assert response.status_code == 200
    assert "Keep it to 4,000 characters" in response.content.decode()
    assert "x" * 4001 in response.content.decode()
    message.refresh_from_db()
    assert message.body == "Hello from Ana"


def test_message_delete_without_htmx_redirects(client, room, message, member):
    client.force_login(member)
    response = client.post(reverse("chat:message_delete", args=[message.pk]))
    assert response.status_code == 302
    assert response.url == reverse("chat:room", args=[room.pk])


def test_room_create_with_htmx_redirects_the_client(client, course, instructor):
    client.force_login(instructor)
    response = client.post(reverse("chat:room_create", args=[course.pk]), {"name": "  Week   5 "}, headers=HX)
    room = Room.objects.get(name="Week 5")
    assert response["HX-Redirect"] == reverse("chat:room", args=[room.pk])
    assert room.course == course


def test_room_create_with_a_taken_name_keeps_it_and_says_so(client, room, course, instructor):
    client.force_login(instructor)
    response = client.post(reverse("chat:room_create", args=[course.pk]), {"name": "general"}, headers=HX)
    assert response["HX-Retarget"] == f"#room-form-{course.pk}"
    assert "already has a room with that name" in response.content.decode()
    assert 'value="general"' in response.content.decode()
    assert course.rooms.count() == 1


# --- Flood limit ------------------------------------------------------------------------------------


def test_message_create_flood_is_429_after_ten_and_keeps_the_text(client, room, member, classmate):
    client.force_login(member)
    for n in range(10):
        assert post_message(client, room, f"Message {n}").status_code == 204
    response = post_message(client, room, "One too many <3")
    fragment = response.content.decode()
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Slow down" in fragment
    assert response["HX-Retarget"] == "#composer"
    assert textarea(fragment) == html.escape("One too many <3")
    assert Message.objects.count() == 10
    client.force_login(classmate)
    assert post_message(client, room, "Not me").status_code == 204


# --- Mute ---------------------------------------------------------------------------------------------


def test_muted_member_post_is_refused_and_nothing_stored(client, room, course, member, instructor):
    do_mute_member(course, actor=instructor, user=member, until=timezone.now() + timedelta(hours=1))
    client.force_login(member)
    response = post_message(client, room, "Let me speak")
    assert response.status_code == 200
    assert "You are muted in this course&#x27;s rooms." in response.content.decode()
    assert not Message.objects.exists()


def test_room_page_of_muted_member_shows_notice_and_disabled_textarea(client, room, course, member, instructor):
    do_mute_member(course, actor=instructor, user=member, until=None)
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert "You are muted in this course's rooms until an instructor lifts it." in html.unescape(page)
    assert re.search(r'<textarea id="id_body"[^>]* disabled', page)


def test_room_page_of_unmuted_member_has_an_enabled_textarea(client, room, member):
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert "You are muted" not in page
    assert not re.search(r'<textarea id="id_body"[^>]* disabled', page)


def test_mute_view_mutes_and_unmute_view_lets_the_member_post_again(client, room, course, member, instructor):
    client.force_login(instructor)
    response = client.post(reverse("chat:mute", args=[course.pk]), {"user": member.pk, "duration": "1h"})
    assert response.url == reverse("chat:moderation", args=[course.pk])
    assert Mute.objects.active().get().user == member
    client.force_login(member)
    assert post_message(client, room, "Muted?").status_code == 200
    client.force_login(instructor)
    client.post(reverse("chat:unmute", args=[course.pk, member.pk]))
    client.force_login(member)
    assert post_message(client, room, "Back").status_code == 204
    assert Message.objects.get().body == "Back"


def test_expired_mute_does_not_block(client, room, course, member, instructor):
    Mute.objects.create(course=course, user=member, muted_by=instructor, until=timezone.now() - timedelta(seconds=1))
    client.force_login(member)
    assert post_message(client, room, "Free again").status_code == 204


def test_mute_does_not_apply_in_direct_rooms(client, direct, course, member, instructor):
    do_mute_member(course, actor=instructor, user=member, until=None)
    client.force_login(member)
    assert post_message(client, direct, "Private").status_code == 204


def test_mute_of_an_instructor_is_400(client, course, instructor):
    colleague = InstructorFactory(username="omar")
    course.instructors.add(colleague)
    client.force_login(instructor)
    for target in (colleague, instructor):
        response = client.post(reverse("chat:mute", args=[course.pk]), {"user": target.pk, "duration": "1h"})
        assert response.status_code == 400
    assert not Mute.objects.exists()


def test_mute_of_someone_outside_the_course_is_404(client, course, instructor, stranger):
    client.force_login(instructor)
    response = client.post(reverse("chat:mute", args=[course.pk]), {"user": stranger.pk, "duration": "1h"})
    assert response.status_code == 404
    assert not Mute.objects.exists()


# --- Pagination -------------------------------------------------------------------------------------


@pytest.fixture
def many_ids(room, member):
    return [message.pk for message in MessageFactory.create_batch(120, room=room, author=member)]


def history_url(room, before):
    return reverse("chat:history", args=[room.pk]) + f"?before={before}"


def loader(markup: str) -> str | None:
    """The URL of the "older messages" loader, which fires when it scrolls into view."""
    match = re.search(r'<li id="history-more"[^>]*hx-get="([^"]+)"\s+hx-trigger="([^"]+)"', markup)
    if match is None:
        return None
    # "revealed" misses reveals inside an overflow scroller; "intersect root:<scroller>" does not.
    assert match.group(2) == "revealed" or match.group(2).startswith("intersect root:#message-scroller")
    return html.unescape(match.group(1))


def test_room_page_shows_newest_fifty_and_a_loader_for_older(client, room, many_ids, member):
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert message_ids(page) == many_ids[70:]
    assert loader(page) == history_url(room, many_ids[70])
    assert "This is the beginning of the conversation." not in page


def test_history_pages_back_to_the_beginning(client, room, many_ids, member):
    client.force_login(member)
    second = client.get(history_url(room, many_ids[70]), headers=HX).content.decode()
    assert message_ids(second) == many_ids[20:70]
    assert loader(second) == history_url(room, many_ids[20])
    last = client.get(history_url(room, many_ids[20]), headers=HX).content.decode()
    assert message_ids(last) == many_ids[:20]
    assert loader(last) is None
    assert 'id="history-more"' not in last
    assert "This is the beginning of the conversation." in last


def test_room_page_around_shows_that_message_with_older_loader(client, room, many_ids, member):
    client.force_login(member)
    target = many_ids[60]
    page = client.get(reverse("chat:room", args=[room.pk]), {"around": target}).content.decode()
    shown = message_ids(page)
    assert target in shown
    assert shown[0] < target < shown[-1]
    assert loader(page) == history_url(room, shown[0])


def test_room_page_around_a_message_of_another_room_is_404(client, room, other_room, member):
    elsewhere = MessageFactory(room=other_room)
    client.force_login(member)
    assert client.get(reverse("chat:room", args=[room.pk]), {"around": elsewhere.pk}).status_code == 404


def test_history_is_keyset_paginated_so_new_messages_do_not_shift_pages(client, room, many_ids, member):
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    oldest_shown = message_ids(page)[0]
    MessageFactory.create_batch(3, room=room, author=member)
    older = client.get(history_url(room, oldest_shown), headers=HX).content.decode()
    assert message_ids(older) == many_ids[20:70]


# --- XSS -----------------------------------------------------------------------------------------------


def assert_inert(markup: str) -> None:
    assert "<script>alert" not in markup
    assert "<img" not in markup
    assert "javascript:" not in markup
    assert "onerror=alert(1)>" not in markup


def test_message_html_is_escaped_in_the_page_and_the_pushed_fragment(
    client, room, member, sent_events, django_capture_on_commit_callbacks
):
    client.force_login(member)
    with django_capture_on_commit_callbacks(execute=True):
        for body in XSS_BODIES:
            assert post_message(client, room, body).status_code == 204
    fragments = [data for _, event, data in sent_events if event in ("message_created", "room_summary")]
    assert len(fragments) == 6
    for fragment in fragments:
        assert_inert(fragment)
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert_inert(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fragments[0]
    home = client.get(reverse("chat:home")).content.decode()
    assert_inert(home)


@pytest.fixture
def bob(course):
    bob = UserFactory(username="bob", display_name="<b>Bob</b>")
    course.enrolments.create(user=bob)
    return bob


def test_display_name_html_is_escaped_everywhere(
    client, room, member, bob, sent_events, django_capture_on_commit_callbacks
):
    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        post_message(client, room, "Hi from bob")
    escaped = "&lt;b&gt;Bob&lt;/b&gt;"
    assert sent_events
    for _, _, fragment in sent_events:
        assert "<b>Bob" not in fragment
        assert escaped in fragment
    client.force_login(member)
    for url in (
        reverse("chat:room", args=[room.pk]),
        reverse("chat:home"),
        reverse("chat:search", args=[room.pk]) + "?q=from:bob",
    ):
        page = client.get(url).content.decode()
        assert "<b>Bob" not in page
        assert escaped in page


# --- Search --------------------------------------------------------------------------------------------


@pytest.fixture
def searchable(room, member, classmate):
    return {
        "ana": MessageFactory(room=room, author=member, body="The mitochondria is the powerhouse"),
        "ben_cells": MessageFactory(room=room, author=classmate, body="Cells divide by mitosis"),
        "ben": MessageFactory(room=room, author=classmate, body="Mitochondria again, with ribosomes"),
        # Deleted with its text kept, so only the deleted filter can hide it.
        "deleted": MessageFactory(room=room, author=member, body="Secret mitochondria", deleted=timezone.now()),
    }


def search(client, room, q, htmx=True):
    response = client.get(reverse("chat:search", args=[room.pk]), {"q": q}, headers=HX if htmx else {})
    return response, [int(pk) for pk in re.findall(r"\?around=(\d+)#message-\1", response.content.decode())]


def test_search_finds_words(client, room, searchable, member):
    client.force_login(member)
    _, found = search(client, room, "mitochondria")
    assert sorted(found) == sorted([searchable["ana"].pk, searchable["ben"].pk])
    _, found = search(client, room, "mitochondria powerhouse")
    assert found == [searchable["ana"].pk]


def test_search_finds_from_username(client, room, searchable, member):
    client.force_login(member)
    _, found = search(client, room, "from:ben")
    assert sorted(found) == sorted([searchable["ben_cells"].pk, searchable["ben"].pk])


def test_search_combines_words_and_from(client, room, searchable, member):
    client.force_login(member)
    _, found = search(client, room, "from:ben mitochondria")
    assert found == [searchable["ben"].pk]


def test_search_skips_deleted_messages(client, room, searchable, member):
    client.force_login(member)
    _, found = search(client, room, "secret")
    assert found == []
    do_delete_message(searchable["ana"], actor=member)
    _, found = search(client, room, "powerhouse")
    assert found == []


def test_search_results_link_to_the_message_in_the_room(client, room, searchable, member):
    client.force_login(member)
    response, _ = search(client, room, "powerhouse")
    pk = searchable["ana"].pk
    assert f'href="{reverse("chat:room", args=[room.pk])}?around={pk}#message-{pk}"' in response.content.decode()


def test_search_stays_in_its_room(client, room, other_room, searchable, member, staff):
    MessageFactory(room=other_room, body="mitochondria elsewhere")
    client.force_login(staff)
    _, found = search(client, room, "elsewhere")
    assert found == []


def test_search_is_a_partial_with_htmx_and_a_page_without(client, room, searchable, member):
    client.force_login(member)
    partial, _ = search(client, room, "mitochondria")
    assert "<html" not in partial.content.decode()
    assert 'id="search-results"' in partial.content.decode()
    page, found = search(client, room, "mitochondria", htmx=False)
    assert "<html" in page.content.decode()
    assert len(found) == 2


def test_search_says_when_nothing_is_found(client, room, searchable, member):
    client.force_login(member)
    response, found = search(client, room, "<zebra>")
    assert found == []
    assert "Nothing found for “&lt;zebra&gt;”." in response.content.decode()


def test_search_by_a_stranger_is_404(client, room, searchable, stranger):
    client.force_login(stranger)
    response, _ = search(client, room, "mitochondria")
    assert response.status_code == 404


# --- Moderation log -------------------------------------------------------------------------------------


def test_moderation_log_lists_deletes_mutes_and_unmutes_with_who_and_whom(client, course, message, member, instructor):
    member.display_name = "Ana Souza"
    member.save()
    instructor.display_name = "Inés Moreau"
    instructor.save()
    client.force_login(instructor)
    client.post(reverse("chat:message_delete", args=[message.pk]))
    client.post(reverse("chat:mute", args=[course.pk]), {"user": member.pk, "duration": "lifted"})
    client.post(reverse("chat:unmute", args=[course.pk, member.pk]))
    response = client.get(reverse("chat:moderation", args=[course.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    rows = re.findall(r"<tr>\s*<td><time.*?</tr>", page, re.DOTALL)
    assert len(rows) == 3
    for row, action in zip(rows, ["lifted the mute of", "muted", "deleted a message"], strict=True):
        assert action in row
        assert "Inés Moreau" in row
        assert "Ana Souza" in row
    assert "Hello from Ana" in rows[2]


def test_moderation_log_escapes_the_deleted_text(client, room, course, member, instructor):
    message = MessageFactory(room=room, author=member, body="<script>alert(1)</script>")
    do_delete_message(message, actor=instructor)
    client.force_login(instructor)
    page = client.get(reverse("chat:moderation", args=[course.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page


# --- Direct messages ----------------------------------------------------------------------------------


def test_direct_start_between_people_who_share_a_course_redirects_to_one_room(client, member, classmate):
    client.force_login(member)
    response = client.post(reverse("chat:direct", args=[classmate.pk]))
    room = Room.objects.get(kind=Room.Kind.DIRECT)
    assert response.status_code == 302
    assert response.url == reverse("chat:room", args=[room.pk])
    assert set(room.participants.all()) == {member, classmate}
    client.force_login(classmate)
    response = client.post(reverse("chat:direct", args=[member.pk]), headers=HX)
    assert response["HX-Redirect"] == reverse("chat:room", args=[room.pk])
    assert Room.objects.filter(kind=Room.Kind.DIRECT).count() == 1


def test_direct_start_with_an_instructor_of_a_shared_course_works(client, course, member, instructor):
    client.force_login(member)
    assert client.post(reverse("chat:direct", args=[instructor.pk])).status_code == 302


def test_direct_start_without_a_shared_course_is_404(client, member, stranger):
    client.force_login(member)
    assert client.post(reverse("chat:direct", args=[stranger.pk])).status_code == 404
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


def test_staff_can_do_everything_so_they_message_anyone(client, member, stranger, staff):
    client.force_login(staff)
    assert client.post(reverse("chat:direct", args=[member.pk])).status_code == 302
    assert Room.objects.filter(kind=Room.Kind.DIRECT, participants=member).filter(participants=staff).exists()
    client.force_login(member)  # and the member answers in that conversation, but still not strangers
    assert client.post(reverse("chat:direct", args=[stranger.pk])).status_code == 404


def test_direct_start_with_yourself_is_404(client, course, member):
    client.force_login(member)
    assert client.post(reverse("chat:direct", args=[member.pk])).status_code == 404
    assert not Room.objects.filter(kind=Room.Kind.DIRECT).exists()


def test_direct_room_page_titles_it_with_the_other_persons_name(client, direct, member, classmate):
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[direct.pk])).content.decode()
    assert '<h1 id="room-title"><bdi>Ben Okafor</bdi></h1>' in page


# --- Queries --------------------------------------------------------------------------------------------

# Session, user, room, channels, 3 event counters (room, user, course), page, has_older, can_moderate,
# sidebar rooms + participants + last messages, mute. Measured: 14 on SQLite and PostgreSQL.
# Session, user, room, the reader's enrolment, channels (3 event ids), read marker (opening
# reads), messages, receipts, presence, members, mute, sidebar rooms and last messages, the
# notifications badge; the unread counts the page starts from (rooms, newest id, markers,
# counts: a request of their own before), and whether the room is small enough for receipts;
# the reactions of the page's messages (one query).
ROOM_PAGE_QUERIES = 31


def fill_room(room, authors, count):
    messages = []
    for n in range(count):
        reply_to = messages[n - 3] if n >= 3 and n % 4 == 0 else None
        messages.append(MessageFactory(room=room, author=authors[n % len(authors)], reply_to=reply_to))
    return messages


def room_page_queries(client, room) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("chat:room", args=[room.pk])).status_code == 200
    return len(queries)


def test_room_page_queries_do_not_grow_with_messages(client, course, member, classmate, instructor, bob):
    authors = [member, classmate, instructor, bob]
    small = RoomFactory(course=course, name="Small")
    large = RoomFactory(course=course, name="Large")
    fill_room(small, authors, 10)
    fill_room(large, authors, 50)
    client.force_login(member)
    for room in (small, large):  # warm up (session, content types, the read markers)
        client.get(reverse("chat:room", args=[room.pk]))
    assert room_page_queries(client, small) == room_page_queries(client, large)


def test_room_page_with_fifty_messages_is_a_bounded_number_of_queries(
    client, room, course, member, classmate, instructor, bob, django_assert_max_num_queries
):
    fill_room(room, [member, classmate, instructor, bob], 50)
    client.force_login(member)
    client.get(reverse("chat:room", args=[room.pk]))
    with django_assert_max_num_queries(ROOM_PAGE_QUERIES):
        response = client.get(reverse("chat:room", args=[room.pk]))
    assert len(message_ids(response.content.decode())) == 50


# --- Sample data ------------------------------------------------------------------------------------------


def create_sample_data():
    call_command("create_sample_data", stdout=StringIO())


def test_create_sample_data_gives_each_course_a_general_room_with_messages():
    create_sample_data()
    courses = Course.objects.all()
    assert courses
    for course in courses:
        room = Room.objects.get(course=course, name="General")
        assert room.messages.exists()
    bodies = list(Message.objects.filter(room__kind=Room.Kind.COURSE).values_list("body_html", flat=True))
    assert any('<a href="https://' in body for body in bodies)
    assert any("<strong>" in body or "<em>" in body or "<code>" in body for body in bodies)


def test_create_sample_data_has_one_direct_conversation():
    create_sample_data()
    [direct] = Room.objects.filter(kind=Room.Kind.DIRECT)
    assert direct.participants.count() == 2
    assert direct.messages.exists()


def test_create_sample_data_twice_adds_nothing():
    create_sample_data()
    counts = (Room.objects.count(), Message.objects.count())
    create_sample_data()
    assert (Room.objects.count(), Message.objects.count()) == counts
