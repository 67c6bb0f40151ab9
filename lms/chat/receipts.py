"""Read receipts and unread counts, computed from read markers (never from counters that drift)."""

from django.db.models import Count, Q

from lms.chat.models import Message, ReadMarker, Room


def annotate_receipts(room: Room, messages: list[Message]) -> None:
    """Set `message.seen_by` (the readers' names, author excluded) on each message.

    Only members who send receipts count. In a direct conversation, only the newest message the
    other person has read says "seen" (`message.seen_last`).
    """
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


def unread_counts(user, rooms) -> dict[int, int]:
    """Messages by others after the user's read marker, per room, in one query."""
    rooms = list(rooms)
    if not rooms:
        return {}
    markers = dict(ReadMarker.objects.filter(user=user, room__in=rooms).values_list("room_id", "last_read_id"))
    after = Q()
    for room in rooms:
        after |= Q(room_id=room.pk, pk__gt=markers.get(room.pk, 0))
    counts = (
        Message.objects.filter(after, deleted__isnull=True)
        .exclude(author=user)
        .values("room_id")
        .annotate(n=Count("pk"))
    )
    return {row["room_id"]: row["n"] for row in counts}
