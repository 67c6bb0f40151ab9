"""Deleted means deleted: no stored event keeps the text of what was edited, deleted or taken back.

A member replaying every channel from `:0` must read what the pages show now: the message's
own events, the replies quoting it, chat home's previews, and the Q&A lists.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from lms import ratelimit
from lms.chat.actions import (
    do_delete_message,
    do_edit_message,
    do_get_or_create_direct_room,
    do_post_message,
)
from lms.qa.actions import do_ask_question, do_dismiss_question, do_post_unanswered_summary, do_withdraw_question
from lms.realtime import channel
from lms.realtime.storage import read_since
from tests.conftest import run
from tests.factories import RoomFactory, StreamFactory, UserFactory
from tests.sse import SSEClient

SECRET = "my phone number is 555-0199"


@pytest.fixture(autouse=True)
def fresh_flood_counts():
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def classmate(course):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


@pytest.fixture
def room(course):
    return RoomFactory(course=course, name="General")


@pytest.fixture
def direct(member, classmate):
    return do_get_or_create_direct_room(member, other=classmate)


def replayed(*channels: str) -> str:
    """Everything a page replaying `channels` from `:0` reads, as one text."""
    out = []
    for name, (events, _, reset) in read_since({name: 0 for name in channels}, 500).items():
        assert not reset, name
        out.extend(f"{event.type}: {event.data}" for event in events)
    return "\n".join(out)


def channels_of(room) -> list[str]:
    if room.is_direct:
        return [channel("room", room.pk), *(channel("user", p.pk) for p in room.participants.all())]
    return [channel("room", room.pk), channel("course", room.course_id)]


def post(room, author, body, **kwargs):
    with transaction.atomic():
        message, _ = do_post_message(room, author=author, body=body, **kwargs)
    return message


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run what actions publish after commit, as a request would."""

    def call(action, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return action(*args, **kwargs)

    return call


@pytest.mark.parametrize("where", ["room", "direct"])
def test_a_message_deleted_by_its_author_is_gone_from_every_replay(request, where, member, classmate, committed):
    place = request.getfixturevalue(where)
    secret = committed(post, place, member, SECRET)
    committed(post, place, classmate, "Thanks, I'll call you", reply_to=secret)
    assert "555-0199" in replayed(*channels_of(place))  # the replay did keep it

    committed(do_delete_message, secret, actor=member)

    text = replayed(*channels_of(place))
    assert "555-0199" not in text
    assert "Thanks, I&#x27;ll call you" in text  # the reply stays, quoting a deleted message
    assert "message deleted" in text
    assert f'id="message-{secret.pk}" class="message is-deleted"' in text


def test_a_message_removed_by_an_instructor_is_gone_from_every_replay(room, member, classmate, instructor, committed):
    secret = committed(post, room, member, SECRET)
    committed(post, room, classmate, "Quoting it", reply_to=secret)

    committed(do_delete_message, secret, actor=instructor)

    text = replayed(*channels_of(room))
    assert "555-0199" not in text
    assert "Message deleted" in text


@pytest.mark.parametrize("where", ["room", "direct"])
def test_an_edited_message_replays_only_its_new_text(request, where, member, classmate, committed):
    place = request.getfixturevalue(where)
    secret = committed(post, place, member, SECRET)
    committed(post, place, classmate, "Got it", reply_to=secret)
    committed(do_edit_message, secret, body="Call the office instead")
    committed(do_edit_message, secret, body="Call the front desk instead")

    text = replayed(*channels_of(place))
    assert "555-0199" not in text
    assert "Call the office" not in text  # earlier edits are rewritten too
    # The message's own events, the reply's quote and chat home's preview read the new text.
    assert text.count("Call the front desk instead") >= 4
    assert "(edited)" in text


@pytest.mark.django_db(transaction=True)
def test_replay_over_a_real_stream_shows_no_deleted_text(app_server, room, member, classmate, instructor, session_for):
    key = session_for(classmate)
    secret = post(room, member, SECRET)
    post(room, classmate, "Replying", reply_to=secret)
    do_delete_message(secret, actor=instructor)
    names = channels_of(room)

    async def scenario():
        query = "&".join(f"channel={name}" for name in names)
        last = ",".join(f"{name}:0" for name in names)
        async with SSEClient(f"{app_server.url}/events/?{query}&lastEventId={last}", session=key) as client:
            assert client.status == 200
            seen = []
            while not any("Replying" in e.data for e in seen) or not any(
                e.type == "message_updated" for e in seen
            ):
                seen.append(await client.next_event(5))
            return seen

    events = run(scenario())
    assert all("555-0199" not in event.data for event in events)


@pytest.fixture
def stream(course):
    return StreamFactory(course=course, title="Cell biology", live=True, started_at=timezone.now() - timedelta(minutes=10))


def stream_channels(stream) -> list[str]:
    return [channel("stream", stream.pk), channel("stream_manage", stream.pk)]


@pytest.mark.parametrize("take_back", ["withdraw", "dismiss"])
def test_a_question_taken_off_the_list_is_gone_from_every_replay(take_back, stream, member, classmate, committed):
    secret, _ = committed(do_ask_question, stream, author=member, text="Is 555-0199 your office?")
    committed(do_ask_question, stream, author=classmate, text="What is ATP?")
    assert "555-0199" in replayed(*stream_channels(stream))

    committed(do_withdraw_question if take_back == "withdraw" else do_dismiss_question, secret)

    # Gone for students; the instructors' queue lists dismissed questions (to reopen them), as
    # their page does, and nothing withdrawn.
    readers = stream_channels(stream) if take_back == "withdraw" else [channel("stream", stream.pk)]
    text = replayed(*readers)
    assert "555-0199" not in text
    assert "What is ATP?" in text


def test_a_deleted_summary_of_unanswered_questions_is_gone_from_every_replay(
    room, stream, member, instructor, committed
):
    committed(do_ask_question, stream, author=member, text="Is 555-0199 your office?")
    committed(do_post_unanswered_summary, stream, author=instructor)
    summary = room.messages.get()
    assert "555-0199" in replayed(*channels_of(room))

    committed(do_delete_message, summary, actor=instructor)

    assert "555-0199" not in replayed(*channels_of(room))


def test_messages_of_other_rooms_are_left_alone(room, member, committed, course):
    other = RoomFactory(course=course, name="Off-topic")
    keep = committed(post, other, member, "Keep this")
    secret = committed(post, room, member, SECRET)
    committed(do_delete_message, secret, actor=member)
    assert "Keep this" in replayed(channel("room", other.pk))
    assert keep.pk

