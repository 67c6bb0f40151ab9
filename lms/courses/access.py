"""Who may see and run which course. The courses app's only permission checks."""

from django.shortcuts import get_object_or_404

from lms.courses.models import Course


def access_course(user, course_id: int) -> Course:
    """The course if `user` is a member. Missing and forbidden both 404, so ids can't be probed."""
    return get_object_or_404(Course.objects.for_member(user), pk=course_id)


def is_course_member(user, course_id: int) -> bool:
    return Course.objects.for_member(user).filter(pk=course_id).exists()


def is_course_instructor(user, course_id: int) -> bool:
    return Course.objects.for_instructor(user).filter(pk=course_id).exists()
