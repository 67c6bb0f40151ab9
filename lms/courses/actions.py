"""Every write to courses and enrolments."""

from django.db import transaction

from lms.accounts.models import User
from lms.courses.models import Course, Enrolment
from lms.realtime import recheck_user_streams_on_commit


@transaction.atomic
def do_enrol_user(course: Course, *, user: User) -> Enrolment:
    enrolment, _ = Enrolment.objects.get_or_create(course=course, user=user)
    return enrolment


@transaction.atomic
def do_unenrol_user(course: Course, *, user: User) -> None:
    """Remove `user` from `course`; their open event streams lose the course's channels."""
    Enrolment.objects.filter(course=course, user=user).delete()
    recheck_user_streams_on_commit(user.pk)


@transaction.atomic
def do_remove_instructor(course: Course, *, user: User) -> None:
    course.instructors.remove(user)
    recheck_user_streams_on_commit(user.pk)
