"""Who may read, post in and moderate which room. The chat app's only permission checks."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from lms.chat.models import Message, Mute, Room
from lms.courses.access import is_course_member
from lms.courses.models import Course


def may_read_room(user, room: Room) -> bool:
    """`Room.objects.for_member(user)` for one room: every post and event stream asks it."""
    if not user.is_authenticated:
        return False
    if room.is_direct:
        return room.participants.filter(pk=user.pk).exists()
    return is_course_member(user, room.course_id)


def can_read_room(user, room_id: int) -> bool:
    room = Room.objects.only("kind", "course_id").filter(pk=room_id).order_by().first()
    return room is not None and may_read_room(user, room)


def access_room(user, room_id: int) -> Room:
    """The room if `user` may read it. Missing and forbidden both 404, so ids can't be probed."""
    room = get_object_or_404(Room.objects.select_related("course"), pk=room_id)
    if not may_read_room(user, room):
        raise Http404
    return room


def access_message(user, message_id: int) -> Message:
    """The message if `user` may read its room; 404 otherwise."""
    rooms = Room.objects.for_member(user).values("pk")
    return get_object_or_404(
        Message.objects.with_related().select_related("room", "room__course"), pk=message_id, room__in=rooms
    )


def can_moderate_room(user, room: Room) -> bool:
    """Instructors of the room's course (and staff) moderate course rooms; nobody moderates DMs."""
    if room.is_direct or not user.is_authenticated:
        return False
    return Course.objects.for_instructor(user).filter(pk=room.course_id).exists()


def access_message_to_edit(user, message_id: int) -> Message:
    """The user's own message, not deleted. 404 if unreadable, 403 if someone else's."""
    message = access_message(user, message_id)
    if message.author_id != user.pk or message.is_deleted:
        raise PermissionDenied
    return message


def access_message_to_delete(user, message_id: int) -> Message:
    """A message its author, or a moderator of its room, may delete."""
    message = access_message(user, message_id)
    if message.author_id != user.pk and not can_moderate_room(user, message.room):
        raise PermissionDenied
    return message


def access_course_to_moderate(user, course_id: int) -> Course:
    """A course `user` teaches: 404 for strangers, 403 for its students."""
    course = get_object_or_404(Course.objects.for_member(user), pk=course_id)
    if not Course.objects.for_instructor(user).filter(pk=course.pk).exists():
        raise PermissionDenied
    return course


def active_mute(user, room: Room) -> Mute | None:
    if room.is_direct:
        return None
    return active_course_mute(user, room.course_id)


def active_course_mute(user, course_id: int) -> Mute | None:
    """The mute that keeps `user` from speaking in a course: its rooms, its streams' chat and Q&A."""
    return Mute.objects.active().filter(course_id=course_id, user=user).order_by("-created").first()


def _own_courses(user):
    """Courses `user` teaches or is enrolled in (staff rights aside)."""
    return Course.objects.filter(Q(instructors=user) | Q(enrolments__user=user)).values("pk")


def can_message_directly(user, other) -> bool:
    """Two different people who share a course (as students or instructors) may talk directly."""
    if not user.is_authenticated or user.pk == other.pk or not other.is_active:
        return False
    if user.is_staff:  # staff look after everyone, in every course or none
        return True
    return Course.objects.filter(pk__in=_own_courses(user)).filter(pk__in=_own_courses(other)).exists()


def people_to_message(user):
    """Everyone who shares a course with `user` (for staff: everyone, the first 200), for
    starting a direct conversation."""
    people = get_user_model().objects.filter(is_active=True).exclude(pk=user.pk)
    if user.is_staff:
        return people.order_by("display_name", "username")[:200]
    courses = _own_courses(user)
    return (
        people.filter(Q(taught_courses__in=courses) | Q(enrolments__course__in=courses))
        .distinct()
        .order_by("display_name", "username")
    )
