"""Read receipts and unread counts, computed from read markers (never from counters that drift)."""

from django.conf import settings
from django.db.models import Count, Max, Q

from lms.chat.models import Message, ReadMarker, Room


def receipts_shown(room: Room) -> bool:
    """Whether a room shows who has seen each message: direct conversations and small rooms.

    A livestream's chat and a room of more than CHAT_RECEIPTS_MAX_MEMBERS people show none:
    there every read would be pushed to everyone, a cost that grows with the square of the
    audience (Slack shows no receipts in channels either).
    """
    if room.is_direct:
        return True
    if room.kind == Room.Kind.STREAM or room.course_id is None:
        return False
    from lms.courses.models import Course, Enrolment

    limit = settings.CHAT_RECEIPTS_MAX_MEMBERS
    instructors = Course.instructors.through.objects.filter(course_id=room.course_id).count()
    return instructors + Enrolment.objects.filter(course_id=room.course_id)[: limit + 1].count() <= limit


def annotate_receipts(room: Room, messages: list[Message]) -> None:
    """Set `message.seen_by` (the readers' names, author excluded) on each message.

    Only members who send receipts count. In a direct conversation, only the newest message the
    other person has read says "seen" (`message.seen_last`). Rooms that show no receipts
    (`receipts_shown`) get empty lists without a query.
    """
    for message in messages:
        message.seen_by, message.seen_last = [], False
    if not messages or not receipts_shown(room):
        return
    markers = [
        (m.user_id, m.user.name, m.last_read_id)
        for m in ReadMarker.objects.filter(room=room, user__send_read_receipts=True, last_read_id__gt=0).select_related("user")
    ]
    for message in messages:
        message.seen_by = sorted(name for uid, name, last in markers if last >= message.pk and uid != message.author_id)
        message.seen_last = False
    if room.is_direct:
        seen = [m for m in messages if m.seen_by]
        if seen:
            max(seen, key=lambda m: m.pk).seen_last = True


def unread_state(user) -> dict:
    """The user's unread counts per listed room, their total, and `upto`: the newest message id
    they take into account. A page counts the messages announced after `upto` itself."""
    rooms = list(Room.objects.for_member(user).listed().only("pk"))
    upto = Message.objects.filter(room__in=rooms).aggregate(upto=Max("pk"))["upto"] or 0
    counts = unread_counts(user, rooms, upto=upto)
    return {"counts": counts, "total": sum(counts.values()), "upto": upto}


def unread_counts(user, rooms, *, upto: int | None = None) -> dict[int, int]:
    """Messages by others after the user's read marker (and up to `upto`), per room, in one query."""
    rooms = list(rooms)
    if not rooms:
        return {}
    markers = dict(ReadMarker.objects.filter(user=user, room__in=rooms).values_list("room_id", "last_read_id"))
    after = Q()
    for room in rooms:
        after |= Q(room_id=room.pk, pk__gt=markers.get(room.pk, 0))
    if upto is not None:
        after &= Q(pk__lte=upto)
    counts = (
        Message.objects.filter(after, deleted__isnull=True)
        .exclude(author=user)
        .values("room_id")
        .annotate(n=Count("pk"))
    )
    return {row["room_id"]: row["n"] for row in counts}
