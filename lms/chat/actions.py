"""Every write to chat: each saves, then announces once the transaction commits."""

import uuid
from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from lms.accounts.models import User
from lms import ratelimit
from lms.chat.models import REACTIONS, Message, ModerationEntry, Mute, Reaction, Room
from lms.chat.text import render_message
from lms.courses.models import Course
from lms.realtime import (
    channel,
    parse_channel,
    publish_fragment_on_commit,
    publish_on_commit,
    rewrite_stored,
    stored_key,
)
from lms.realtime.coalesce import coalesce

room_channel = partial(channel, "room")


def _message_copies(message: Message) -> dict:
    """What a stored event of `message` shows: itself, and the message it quotes."""
    quoted = [stored_key("chat_message", message.reply_to_id)] if message.reply_to_id else []
    return {"source": stored_key("chat_message", message.pk), "shows": quoted}


def render_stored_message(pk: int, channel_name: str, event: str) -> str | None:
    """A stored event of message `pk` as the room shows it now (`lms.realtime.copies`)."""
    message = Message.objects.with_related().filter(pk=pk).first()
    if message is None:
        return None
    context = {"message": message, "oob": event != "message_created"}
    return render_to_string("chat/room.html#message", context).strip()


def render_stored_summary(pk: int, channel_name: str, event: str) -> str | None:
    """A stored chat-home line whose last message is `pk`, as it reads now."""
    message = Message.objects.with_related().select_related("room__course").filter(pk=pk).first()
    parsed = parse_channel(channel_name)
    if message is None or parsed is None:
        return None
    room = message.room
    if room.is_direct:
        reader = User.objects.filter(pk=parsed[1]).first() if parsed[0] == "user" else None
        title = room.title_for(reader) if reader is not None else room.name
    else:
        title = room.name
    context = {"room": room, "title": title, "last": message, "oob": True}
    return render_to_string("chat/home.html#room-summary", context).strip()


def _announce_summary(room: Room, message: Message | None) -> None:
    """Chat home's line for `room` (last message), to everyone whose home lists it."""
    if room.kind == Room.Kind.STREAM:
        return  # a livestream's chat is not listed on chat home
    # The preview quotes the message: rewritten with it (`render_stored_summary`).
    copies = {}
    if message is not None:
        shown = stored_key("chat_message", message.pk)
        copies = {"source": stored_key("chat_summary", message.pk), "shows": [shown]}
    if room.is_direct:
        for person in room.participants.all():
            publish_fragment_on_commit(
                channel("user", person.pk), "room_summary", "chat/home.html#room-summary",
                {"room": room, "title": room.title_for(person), "last": message, "oob": True},
                **copies,
            )
    else:
        publish_fragment_on_commit(
            channel("course", room.course_id), "room_summary", "chat/home.html#room-summary",
            {"room": room, "title": room.name, "last": message, "oob": True},
            **copies,
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
    if reply_to is not None and reply_to.room_id != room.pk:
        reply_to = None
    try:
        # One transaction, and no savepoint: a retry's IntegrityError rolls it all back.
        with transaction.atomic():
            message = Message.objects.create(
                room=room, author=author, body=body, body_html=render_message(body, mentions=mentionable(room, body)),
                reply_to=reply_to, client_token=client_token,
            )
            # What `with_related()` would load, without reading it back.
            message.room, message.author, message.reply_to = room, author, reply_to
            publish_fragment_on_commit(
                room_channel(room.pk), "message_created", "chat/room.html#message", {"message": message},
                **_message_copies(message),
            )
            _announce_summary(room, message)
            _notify_mentions(message)
            # The message is here: its author is no longer typing, whatever the last signal said.
            transaction.on_commit(lambda: _stop_typing(room.pk, author.pk))
    except IntegrityError:  # a retry: one message per (author, client_token)
        if client_token is None:
            raise
        return Message.objects.with_related().get(author=author, client_token=client_token), False
    return message, True


def _stop_typing(room_id: int, user_id: int) -> None:
    from lms.realtime.ephemeral import discard

    discard("typing", room_id, user_id)


def mentionable(room: Room, body: str) -> frozenset[str]:
    """The @names in `body` to highlight: the room's members (and "all")."""
    from lms.chat.text import find_mentions

    names = find_mentions(body)
    if not names:
        return frozenset()
    usernames = {m.username.lower() for m in room_members(room)}
    return frozenset(n for n in names if n in usernames or n == "all")


@transaction.atomic
def do_edit_message(message: Message, *, body: str) -> Message:
    """Change a message's text. Assumes the editor is its author (`access_message_to_edit`)."""
    message.body = body
    message.body_html = render_message(body, mentions=mentionable(message.room, body))
    message.edited = timezone.now()
    message.save(update_fields=["body", "body_html", "edited"])
    # Every stored copy of the old text (its events, replies quoting it, previews) is rewritten
    # in this transaction: a page replaying storage reads only the new text.
    rewrite_stored(stored_key("chat_message", message.pk))
    publish_fragment_on_commit(
        room_channel(message.room_id), "message_updated", "chat/room.html#message",
        {"message": message, "oob": True}, **_message_copies(message),
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
    # Deleted means deleted: no stored event keeps the text (see `do_edit_message`).
    rewrite_stored(stored_key("chat_message", message.pk))
    publish_fragment_on_commit(
        room_channel(message.room_id), "message_updated", "chat/room.html#message",
        {"message": message, "oob": True}, **_message_copies(message),
    )
    return message


# Reactions: at most this many adds and removes per person in this many seconds, across rooms.
REACTION_LIMIT = 30
REACTION_WINDOW = 30.0


class RateLimited(Exception):
    def __init__(self, wait: int):
        super().__init__(f"wait {wait} s")
        self.wait = wait


def _check_reaction_rate(user: User) -> None:
    wait = ratelimit.hit(f"react:{user.pk}", limit=REACTION_LIMIT, window=REACTION_WINDOW)
    if wait:
        raise RateLimited(wait)


# A message's reactions bar is pushed at most this often (per process): a lecture's "👍 if that
# made sense" is a burst of hundreds of reactions, each pushed to hundreds of pages otherwise.
REACTIONS_DELAY = 0.5


def _announce_reactions(message: Message) -> None:
    transaction.on_commit(partial(coalesce, "reactions", message.pk), robust=True)


def announce_reactions(message_id: int, _items: dict) -> None:
    """The message's reactions bar as it is now, by id, out of band: never the whole message."""
    message = Message.objects.filter(pk=message_id).only("pk", "room_id", "deleted").first()
    if message is None:
        return
    publish_fragment_on_commit(
        room_channel(message.room_id), "reactions_changed", "chat/room.html#reactions",
        {"message": message, "oob": True},
    )


@transaction.atomic
def do_add_reaction(message: Message, *, user: User, emoji: str, rate_limited: bool = True) -> bool:
    """`user` reacts to `message` with `emoji` (one of `REACTIONS`); True if it is new.

    Assumes `user` may read the message's room and the message is not deleted. Raises
    `RateLimited` past REACTION_LIMIT adds and removes per REACTION_WINDOW (unless
    `rate_limited` is false: sample data).
    """
    if emoji not in REACTIONS:
        raise ValueError(f"not an offered reaction: {emoji!r}")
    if rate_limited:
        _check_reaction_rate(user)
    try:
        with transaction.atomic():
            Reaction.objects.create(message=message, user=user, emoji=emoji)
    except IntegrityError:  # already there (a double click, a second tab): one per person and emoji
        return False
    _announce_reactions(message)
    return True


@transaction.atomic
def do_remove_reaction(message: Message, *, user: User, emoji: str) -> bool:
    """Take back `user`'s `emoji` on `message`; True if there was one. Rate limited as adding."""
    _check_reaction_rate(user)
    removed, _ = Reaction.objects.filter(message=message, user=user, emoji=emoji).delete()
    if removed:
        _announce_reactions(message)
    return bool(removed)


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



# -- the live layer: typing, presence, reading, mentions --------------------------------------

TYPING_SECONDS = 6  # a typist disappears this long after their last signal


def do_signal_typing(room: Room, *, user: User) -> None:
    """`user` is typing in `room` (the page sends this at most every 3 s). No database write."""
    from lms.realtime.ephemeral import touch

    touch("typing", room.pk, user.pk)


def announce_typing(room_id: int, user_ids: list[int]) -> None:
    """Push who is typing: one fragment with a line for everyone and one per typist (what that
    typist sees: the others only); the page's CSS shows each reader their line."""
    from django.contrib.auth import get_user_model

    people = get_user_model().objects.in_bulk(user_ids)
    typists = [people[uid] for uid in user_ids if uid in people]
    lines = [("all", typing_sentence([p.name for p in typists]))]
    for person in typists[:20]:
        lines.append((str(person.pk), typing_sentence([p.name for p in typists if p.pk != person.pk])))
    publish_fragment_on_commit(
        room_channel(room_id), "typing_changed", "chat/room.html#typing", {"lines": lines, "oob": True}, stored=False
    )


def typing_sentence(names: list[str]) -> str:
    from django.utils.translation import gettext as _

    if not names:
        return ""
    if len(names) == 1:
        return _("%(name)s is typing…") % {"name": names[0]}
    if len(names) == 2:
        return _("%(first)s and %(second)s are typing…") % {"first": names[0], "second": names[1]}
    return _("%(count)s people are typing…") % {"count": len(names)}


def announce_room_presence(room_id: int, user_ids: set[int]) -> None:
    """Who has the room open now, pushed at most once a second (by lms.realtime)."""

    if Room.objects.filter(pk=room_id, kind=Room.Kind.STREAM).exists():
        return  # a stream page shows its viewer count instead of a list of everyone

    publish_fragment_on_commit(
        room_channel(room_id), "presence_changed", "chat/room.html#presence",
        {**present_people(user_ids), "oob": True}, stored=False,
    )


# A lecture's room can have hundreds of people in it: "Here now" names this many, then counts.
PRESENCE_LIST_LIMIT = 50


def present_people(user_ids: set[int]) -> dict:
    """The "Here now" list's context: the first PRESENCE_LIST_LIMIT of these people by name (as `User.name`
    reads), how many there are, and how many are not named."""
    from django.contrib.auth import get_user_model
    from django.db.models import Value
    from django.db.models.functions import Coalesce, Concat, Lower, NullIf, Trim

    shown_name = Coalesce(
        NullIf("display_name", Value("")),
        NullIf(Trim(Concat("first_name", Value(" "), "last_name")), Value("")),
        "username",
    )
    people = (
        get_user_model().objects.filter(pk__in=user_ids)
        .annotate(sort_name=Lower(shown_name)).order_by("sort_name", "pk")[:PRESENCE_LIST_LIMIT]
    )
    people = list(people)
    return {"present": people, "present_count": len(user_ids), "present_more": len(user_ids) - len(people)}


@transaction.atomic
def do_mark_read(room: Room, *, user: User, last_id: int) -> bool:
    """Move `user`'s read marker in `room` forward to `last_id` (never back); True if it moved.

    The user's pages get their new unread counts pushed (they need not ask). Receipts are pushed
    for rooms that show them, coalesced: at most one event per room every RECEIPTS_DELAY
    seconds, carrying only the messages whose "seen" changed.
    """
    from lms.chat.models import ReadMarker

    last_id = min(last_id, room.messages.order_by("-pk").values_list("pk", flat=True).first() or 0)
    marker, _ = ReadMarker.objects.select_for_update().get_or_create(room=room, user=user)
    if last_id <= marker.last_read_id:
        return False
    before = marker.last_read_id
    marker.last_read_id = last_id
    marker.updated = timezone.now()
    marker.save(update_fields=["last_read_id", "updated"])
    transaction.on_commit(lambda: _announce_unread(user), robust=True)
    if user.send_read_receipts and room.kind != Room.Kind.STREAM:
        transaction.on_commit(
            lambda: coalesce("receipts", room.pk, {"lo": before, "hi": last_id}), robust=True
        )
    return True


@transaction.atomic
def do_mark_all_read(user: User) -> int:
    """Move `user`'s read marker in every room chat home lists to its newest message ("Mark all
    as read"); returns how many moved. One push of the new counts to the user's pages, and the
    rooms' receipts coalesced as `do_mark_read` does."""
    from django.db.models import Max

    from lms.chat.models import ReadMarker

    rooms = Room.objects.for_member(user).listed()
    newest = dict(
        Message.objects.filter(room__in=rooms).order_by().values("room_id").annotate(last=Max("pk"))
        .values_list("room_id", "last")
    )
    markers = {m.room_id: m for m in ReadMarker.objects.select_for_update().filter(user=user, room_id__in=list(newest))}
    now = timezone.now()
    moved = []
    for room_id, last in newest.items():
        marker = markers.get(room_id)
        if marker is None:
            marker, _ = ReadMarker.objects.get_or_create(room_id=room_id, user=user)
        if marker.last_read_id >= last:
            continue
        moved.append((room_id, marker.last_read_id, last))
        marker.last_read_id, marker.updated = last, now
        marker.save(update_fields=["last_read_id", "updated"])
    if moved:
        transaction.on_commit(lambda: _announce_unread(user), robust=True)
        if user.send_read_receipts:
            for room_id, before, last in moved:
                transaction.on_commit(
                    partial(coalesce, "receipts", room_id, {"lo": before, "hi": last}), robust=True
                )
    return len(moved)


def _announce_unread(user: User) -> None:
    from lms.chat.receipts import unread_state

    publish_fragment_on_commit(
        channel("user", user.pk), "unread_changed", "base.html#unread-state",
        {"unread": unread_state(user), "oob": True}, stored=False,
    )


RECEIPTS_DELAY = 2.0  # seconds: at most one receipts event per room this often (per process)


def widen_read_range(pending: dict, items: dict) -> None:
    """Coalesced receipts: the messages between the lowest old marker and the highest new one."""
    pending["lo"] = min(pending.get("lo", items["lo"]), items["lo"])
    pending["hi"] = max(pending.get("hi", items["hi"]), items["hi"])


def announce_receipts(room_id: int, changed: dict) -> None:
    """Push the "seen" of the messages whose readers changed: those between the markers' old and
    new places (and, in a direct conversation, the one that said "Seen" before)."""
    from lms.chat.receipts import annotate_receipts, receipts_shown

    room = Room.objects.filter(pk=room_id).first()
    if room is None or not receipts_shown(room):
        return
    lo = room.messages.filter(pk__lte=changed["lo"]).order_by("-pk").values_list("pk", flat=True).first() or 0
    messages = list(
        room.messages.filter(pk__gte=lo, pk__lte=changed["hi"], deleted__isnull=True).order_by("-pk")[:RECEIPTS_MAX]
    )
    if not messages:
        return
    annotate_receipts(room, messages)
    publish_fragment_on_commit(
        room_channel(room.pk), "receipts_changed", "chat/room.html#receipts",
        {"chat_messages": messages, "room": room}, stored=False,
    )


RECEIPTS_MAX = 50  # messages per receipts event: older ones are far up the page


def _notify_mentions(message: Message) -> None:
    """Notify the room's members named with @username (and everyone for an instructor's @all)."""
    from lms.chat.access import can_moderate_room
    from lms.chat.models import Notification
    from lms.chat.text import find_mentions

    names = find_mentions(message.body)
    if not names:
        return
    room = message.room
    members = room_members(room)
    everyone = "all" in names and can_moderate_room(message.author, room)
    targets = {m for m in members if m.username.lower() in names or everyone} - {message.author}
    kind = Notification.Kind.ALL if everyone else Notification.Kind.MENTION
    Notification.objects.bulk_create(
        [Notification(user=user, message=message, kind=kind) for user in targets], ignore_conflicts=True
    )
    for user in targets:
        _announce_notifications(user)


def _announce_notifications(user: User) -> None:
    from lms.chat.models import Notification

    def push() -> None:
        count = Notification.objects.filter(user=user).unread().count()
        publish_fragment_on_commit(
            channel("user", user.pk), "notifications_changed", "base.html#notifications-badge",
            {"notification_count": count, "oob": True}, stored=False,
        )

    transaction.on_commit(push)


@transaction.atomic
def do_mark_notifications_read(user: User) -> int:
    from lms.chat.models import Notification

    count = Notification.objects.filter(user=user).unread().update(read_at=timezone.now())
    if count:
        _announce_notifications(user)
    return count


def room_members(room: Room) -> list[User]:
    """Everyone who may read the room (course members, or the two people of a DM)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    if room.is_direct:
        return list(room.participants.all())
    return list(
        get_user_model().objects.filter(is_active=True)
        .filter(Q(taught_courses=room.course_id) | Q(enrolments__course=room.course_id)).distinct()
    )
