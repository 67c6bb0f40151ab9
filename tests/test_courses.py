"""lms.courses: who sees which course, enrolment actions, the admin and the sample data."""

import json
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.db import connection
from django.http import Http404, HttpRequest
from django.test.utils import CaptureQueriesContext

import lms.realtime
from lms.accounts.models import User
from lms.courses.access import access_course, is_course_instructor, is_course_member
from lms.courses.actions import do_enrol_user, do_unenrol_user
from lms.courses.models import Course, Enrolment
from lms.realtime import redis_key
from tests.conftest import requires_redis
from tests.factories import CourseFactory, EnrolmentFactory, InstructorFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_course(db):
    return CourseFactory(code="CS102", instructors=[InstructorFactory(username="omar")])


@pytest.fixture
def staff(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


# Course.objects.for_member / for_instructor


def test_for_member_is_the_courses_a_user_teaches_or_is_enrolled_in(course, other_course, instructor, member):
    assert list(Course.objects.for_member(instructor)) == [course]
    assert list(Course.objects.for_member(member)) == [course]


def test_for_member_lists_a_course_once_for_someone_who_teaches_and_is_enrolled(course, instructor):
    EnrolmentFactory(course=course, user=instructor)
    assert list(Course.objects.for_member(instructor)) == [course]


def test_for_member_is_every_course_for_staff_and_none_for_strangers(course, other_course, stranger, staff):
    assert list(Course.objects.for_member(staff)) == [course, other_course]
    assert list(Course.objects.for_member(stranger)) == []
    assert list(Course.objects.for_member(AnonymousUser())) == []


def test_for_instructor_is_the_courses_a_user_teaches(course, other_course, instructor, member, stranger, staff):
    assert list(Course.objects.for_instructor(instructor)) == [course]
    assert list(Course.objects.for_instructor(member)) == []
    assert list(Course.objects.for_instructor(stranger)) == []
    assert list(Course.objects.for_instructor(staff)) == [course, other_course]
    assert list(Course.objects.for_instructor(AnonymousUser())) == []


# lms.courses.access


def test_access_course_returns_the_course_to_members(course, instructor, member):
    assert access_course(member, course.pk) == course
    assert access_course(instructor, course.pk) == course


@pytest.mark.parametrize("user_fixture", ["stranger", "anonymous"])
def test_access_course_is_404_for_strangers_and_missing_courses_alike(request, course, user_fixture):
    user = AnonymousUser() if user_fixture == "anonymous" else request.getfixturevalue(user_fixture)
    with pytest.raises(Http404):
        access_course(user, course.pk)
    with pytest.raises(Http404):
        access_course(user, course.pk + 1000)


def test_is_course_member_for_instructors_and_students_only(course, instructor, member, stranger):
    assert is_course_member(instructor, course.pk)
    assert is_course_member(member, course.pk)
    assert not is_course_member(stranger, course.pk)
    assert not is_course_member(member, course.pk + 1000)
    assert not is_course_member(AnonymousUser(), course.pk)


def test_is_course_member_for_staff_is_every_course_that_exists(course, other_course, staff):
    assert is_course_member(staff, course.pk)
    assert is_course_member(staff, other_course.pk)
    assert not is_course_member(staff, other_course.pk + 1000)


def test_membership_is_looked_up_by_user_without_joining_every_enrolment(course, member):
    """Joining enrolments and then DISTINCT read all of a course's enrolments per check."""
    sql = str(Course.objects.for_member(member).query).upper()
    assert "JOIN" not in sql and "DISTINCT" not in sql


def test_is_course_member_probes_one_enrolment_for_a_student(course, member):
    with CaptureQueriesContext(connection) as queries:
        assert is_course_member(member, course.pk)
    [query] = queries.captured_queries
    assert "JOIN" not in query["sql"].upper()
    assert '"course_id" = ' in query["sql"] and '"user_id" = ' in query["sql"]


def test_is_course_instructor_for_instructors_and_staff_only(course, instructor, member, staff):
    assert is_course_instructor(instructor, course.pk)
    assert is_course_instructor(staff, course.pk)
    assert not is_course_instructor(member, course.pk)


# lms.courses.actions


@pytest.fixture
def hub(monkeypatch, settings):
    """This process's hub as the actions see it without Redis: what they schedule on its loop."""
    settings.REDIS_URL = ""
    calls = []
    fake = SimpleNamespace(
        recheck_user=lambda user_id: None,
        loop=SimpleNamespace(call_soon_threadsafe=lambda *args: calls.append(args)),
        calls=calls,
    )
    monkeypatch.setattr(lms.realtime, "current_hub", lambda: fake)
    return fake


def test_do_enrol_user_is_idempotent(course, stranger):
    first = do_enrol_user(course, user=stranger)
    again = do_enrol_user(course, user=stranger)
    assert first.pk == again.pk
    assert Enrolment.objects.filter(course=course, user=stranger).count() == 1
    assert is_course_member(stranger, course.pk)


def test_do_unenrol_user_removes_the_enrolment_and_rechecks_streams_after_commit(
    course, member, hub, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        do_unenrol_user(course, user=member)
        assert hub.calls == []
    assert not Enrolment.objects.filter(course=course, user=member).exists()
    assert not is_course_member(member, course.pk)
    assert hub.calls == [(hub.recheck_user, member.pk)]


@requires_redis()
def test_do_unenrol_user_sends_the_recheck_through_redis(course, member, django_capture_on_commit_callbacks):
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_key("control"))
    try:
        pubsub.get_message(timeout=1)
        with django_capture_on_commit_callbacks(execute=True):
            do_unenrol_user(course, user=member)
        message = pubsub.get_message(timeout=5)
    finally:
        pubsub.close()
        client.close()
    assert message is not None
    assert json.loads(message["data"]) == {"op": "recheck", "user_id": member.pk}


# The admin

# Every model of every lms app has an admin that opens (checked in tests/test_admin.py).


# The create_sample_data command


def sample_data() -> list[list[str]]:
    out = StringIO()
    call_command("create_sample_data", stdout=out)
    return [line.split(" ") for line in out.getvalue().splitlines()]


def counts() -> tuple[int, int, int]:
    return User.objects.count(), Course.objects.count(), Enrolment.objects.count()


def test_create_sample_data_prints_one_login_per_line():
    logins = sample_data()
    assert logins
    assert all(len(login) == 3 for login in logins)
    assert {role for role, _, _ in logins} == {"student", "instructor", "staff"}
    assert [role for role, _, _ in logins].count("instructor") == 2
    assert [role for role, _, _ in logins].count("student") == 6
    for role, username, _ in logins:
        user = User.objects.get(username=username)
        assert user.is_staff == (role == "staff")
        assert role == "staff" or user.role == role


def test_create_sample_data_makes_instructors_students_and_courses():
    sample_data()
    assert User.objects.filter(role=User.Role.INSTRUCTOR, is_staff=False).count() == 2
    students = User.objects.filter(role=User.Role.STUDENT, is_staff=False)
    assert students.count() == 6
    courses = Course.objects.all()
    assert courses.count() == 3
    assert all(course.instructors.exists() for course in courses)
    enrolled = [set(course.enrolments.filter(user__in=students).values_list("user", flat=True)) for course in courses]
    assert any(len(users) >= 2 for users in enrolled)
    assert any(student.pk not in users for student in students for users in enrolled)


def test_create_sample_data_twice_creates_nothing_new_and_prints_the_same():
    first = sample_data()
    before = counts()
    assert sample_data() == first
    assert counts() == before


def test_create_sample_data_passwords_log_in(client):
    for _, username, password in sample_data():
        assert client.login(request=HttpRequest(), username=username, password=password), username
        client.logout()
