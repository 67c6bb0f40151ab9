"""Who may watch, create and run which stream. The livestream app's only permission checks."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from lms.courses.models import Course
from lms.livestream.models import Stream


def can_watch_stream(user, stream_id: int) -> bool:
    return Stream.objects.for_member(user).filter(pk=stream_id).exists()


def can_manage_stream(user, stream_id: int) -> bool:
    return Stream.objects.filter(pk=stream_id, course__in=Course.objects.for_instructor(user).values("pk")).exists()


def access_stream(user, stream_id: int) -> Stream:
    """The stream if `user` is in its course. Missing and forbidden both 404."""
    return get_object_or_404(Stream.objects.for_member(user).select_related("course", "chat_room"), pk=stream_id)


def access_stream_to_manage(user, stream_id: int) -> Stream:
    """A stream of a course `user` teaches (or any, for staff): 404 outside it, 403 for students."""
    stream = access_stream(user, stream_id)
    if not can_manage_stream(user, stream.pk):
        raise PermissionDenied
    return stream


def is_stream_host(user, stream: Stream) -> bool:
    """Instructors of the stream's course host it (and moderate the call)."""
    return stream.course.instructors.filter(pk=user.pk).exists()


def courses_to_stream_in(user):
    return Course.objects.for_instructor(user)
