"""Every write to chat: each saves, then announces once the transaction commits."""

import uuid
from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from lms.accounts.models import User
from lms.chat.models import Message, ModerationEntry, Mute, Room
from lms.chat.text import render_message
from lms.courses.models import Course
from lms.realtime import channel, publish_fragment_on_commit, publish_on_commit

room_channel = partial(channel, "room")


def _announce_summary(room: Room, message: Message | None) -> None:
    """Chat home's line for `room` (last message), to everyone whose home lists it."""
    if room.kind == Room.Kind.STREAM:
        return  # a livestream's chat is not listed on chat home
    if room.is_direct:
        for person in room.participants.all():
            publish_fragment_on_commit(
                channel("user", person.pk), "room_summary", "chat/home.html#room-summary",
                {"room": room, "title": room.title_for(person), "last": message, "oob": True},
            )
    else:
        publish_fragment_on_commit(
            channel("course", room.course_id), "room_summary", "chat/home.html#room-summary",
            {"room": room, "title": room.name, "last": message, "oob": True},
        )


@transaction.atomic
def do_create_room(course: Course, *, creator: User, name: str) -> Room:
    """A new room in `course`. Assumes `creator` teaches it (checked by the view)."""
    room = Room.objects.create(kind=Room.Kind.COURSE, course=course, name=name, created_by=creator)
    publish_fragment_on_commit(
        channel("course", course.pk), "course_room_created", "chat/home.html#room-summary",
        {"room": room, "title": room.name, "last": None},
    )
    return room


@transaction.atomic
def do_get_or_create_direct_room(user: User, *, other: User) -> Room:
    """The one direct conversation between two people. Assumes they may talk (checked)."""
    low, high = sorted([user.pk, other.pk])
    key = f"{low}-{high}"
    room = Room.objects.filter(direct_key=key).first()
    if room is None:
        try:
            with transaction.atomic():
                room = Room.objects.create(kind=Room.Kind.DIRECT, direct_key=key, created_by=user)
                room.participants.add(user, other)
            for person, partner in ((user, other), (other, user)):
                publish_fragment_on_commit(
                    channel("user", person.pk), "direct_room_created", "chat/home.html#room-summary",
                    {"room": room, "title": partner.name, "last": None},
                )
        except IntegrityError:  # created at the same moment by the other person
            room = Room.objects.get(direct_key=key)
    return room


@transaction.atomic
def do_post_message(
    room: Room,
    *,
    author: User,
    body: str,
    reply_to: Message | None = None,
    client_token: uuid.UUID | None = None,
) -> tuple[Message, bool]:
    """Save and announce a message; `(message, created)`.

    `body` is already checked (`lms.chat.text.check_message_text`). A retry of the same post
    (same `client_token`) returns the message stored the first time and announces nothing.
    """
    if client_token is not None:
        existing = Message.objects.filter(author=author, client_token=client_token).first()
        if existing is not None:
            return existing, False
    if reply_to is not None and reply_to.room_id != room.pk:
        reply_to = None
    try:
        with transaction.atomic():
            message = Message.objects.create(
                room=room, author=author, body=body, body_html=render_message(body),
                reply_to=reply_to, client_token=client_token,
            )
    except IntegrityError:  # the same retry, at the same moment
        return Message.objects.get(author=author, client_token=client_token), False
    message = Message.objects.with_related().get(pk=message.pk)
    publish_fragment_on_commit(
        room_channel(room.pk), "message_created", "chat/room.html#message", {"message": message}
    )
    _announce_summary(room, message)
    return message, True


@transaction.atomic
def do_edit_message(message: Message, *, body: str) -> Message:
    """Change a message's text. Assumes the editor is its author (`access_message_to_edit`)."""
    message.body = body
    message.body_html = render_message(body)
    message.edited = timezone.now()
    message.save(update_fields=["body", "body_html", "edited"])
    publish_fragment_on_commit(
        room_channel(message.room_id), "message_updated", "chat/room.html#message",
        {"message": message, "oob": True},
    )
    return message


@transaction.atomic
def do_delete_message(message: Message, *, actor: User) -> Message:
    """Replace a message with a "deleted" placeholder. Assumes `access_message_to_delete`.

    A moderator's delete of someone else's message goes into the course's moderation log,
    with the text, so the log stays meaningful after the text is gone from the room.
    """
    if message.author_id != actor.pk:
        ModerationEntry.objects.create(
            course_id=message.room.course_id, actor=actor, action=ModerationEntry.Action.DELETE,
            target=message.author, room=message.room, message=message, detail=message.body,
        )
    message.deleted = timezone.now()
    message.deleted_by = actor
    message.body = ""
    message.body_html = ""
    message.save(update_fields=["deleted", "deleted_by", "body", "body_html"])
    publish_fragment_on_commit(
        room_channel(message.room_id), "message_updated", "chat/room.html#message",
        {"message": message, "oob": True},
    )
    return message


@transaction.atomic
def do_mute_member(course: Course, *, actor: User, user: User, until: datetime | None) -> Mute:
    """Mute `user` in every room of `course` until `until` (None: until lifted)."""
    Mute.objects.active().filter(course=course, user=user).update(lifted=timezone.now(), lifted_by=actor)
    mute = Mute.objects.create(course=course, user=user, muted_by=actor, until=until)
    detail = timezone.localtime(until).strftime("until %Y-%m-%d %H:%M %Z") if until else "until lifted"
    ModerationEntry.objects.create(
        course=course, actor=actor, action=ModerationEntry.Action.MUTE, target=user, detail=detail
    )
    publish_on_commit(channel("user", user.pk), "mute_changed", "", stored=False)
    return mute


@transaction.atomic
def do_unmute_member(course: Course, *, actor: User, user: User) -> int:
    """Lift every active mute of `user` in `course`; returns how many there were."""
    lifted = Mute.objects.active().filter(course=course, user=user).update(
        lifted=timezone.now(), lifted_by=actor
    )
    if lifted:
        ModerationEntry.objects.create(
            course=course, actor=actor, action=ModerationEntry.Action.UNMUTE, target=user
        )
        publish_on_commit(channel("user", user.pk), "mute_changed", "", stored=False)
    return lifted

