"""Who may see and run which course. The courses app's only permission checks."""

from django.shortcuts import get_object_or_404

from lms.courses.models import Course, Enrolment


def access_course(user, course_id: int) -> Course:
    """The course if `user` is a member. Missing and forbidden both 404, so ids can't be probed."""
    return get_object_or_404(Course.objects.for_member(user), pk=course_id)


def is_course_member(user, course_id: int) -> bool:
    """`Course.objects.for_member(user)` for one course, in the fewest and plainest queries:
    every post and every event stream asks it."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return Course.objects.filter(pk=course_id).exists()
    return (
        Enrolment.objects.filter(course_id=course_id, user=user).exists()
        or Course.instructors.through.objects.filter(course_id=course_id, user=user).exists()
    )


def is_course_instructor(user, course_id: int) -> bool:
    return Course.objects.for_instructor(user).filter(pk=course_id).exists()
