import asyncio
import logging
import os

import pytest

from tests.factories import CourseFactory, InstructorFactory, UserFactory
from tests.servers import AppServer, RedisServer, database_url, server_errors


class _ErrorRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_logged_errors(request):
    """Fail any test during which the app logged at ERROR, in this process (the hub's callbacks
    and exceptions the event loop swallowed included) or in an app server a test started.

    An error a test provokes on purpose is its own business when it reads the log (`caplog`);
    an app server's errors always fail.
    """
    handler = _ErrorRecords()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    found = [] if "caplog" in request.fixturenames else [handler.format(r) for r in handler.records]
    found += server_errors()
    if found:
        pytest.fail("The app logged errors during this test:\n\n" + "\n\n".join(found), pytrace=False)


def pytest_sessionfinish(session, exitstatus):
    """Errors app servers wrote after the last test that could report them (at their stop)."""
    leftover = server_errors()
    if leftover:
        print("\nThe app servers logged errors after the last test:\n\n" + "\n\n".join(leftover))
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Every test starts with no write counted against any person or address."""
    from lms import ratelimit

    ratelimit.reset()
    yield


@pytest.fixture
def instructor(db):
    return InstructorFactory(username="ines")


@pytest.fixture
def member(db):
    return UserFactory(username="ana")


@pytest.fixture
def stranger(db):
    return UserFactory(username="zed")


@pytest.fixture
def course(db, instructor, member):
    course = CourseFactory(code="BIO101", instructors=[instructor])
    course.enrolments.create(user=member)
    return course


@pytest.fixture
def room(course, instructor):
    """The course's first room, as its instructor opens it."""
    from lms.chat.actions import do_create_room

    return do_create_room(course, creator=instructor, name="General")


@pytest.fixture
def other_room(course, instructor):
    from lms.chat.actions import do_create_room

    return do_create_room(course, creator=instructor, name="Week 5")


@pytest.fixture
def ben(course):
    """A second student of the course."""
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


@pytest.fixture
def sent_events(monkeypatch):
    """What actions publish: (channel, event, data) for each event, nothing is sent."""
    import lms.realtime

    sent = []

    def capture(channel, event, data, *, stored=True, **copies):
        sent.append((channel, event, data))

    monkeypatch.setattr(lms.realtime, "publish", capture)
    return sent


@pytest.fixture(scope="session")
def test_database_url(django_db_setup, django_db_blocker):
    from django.db import connection

    return database_url(connection.settings_dict)


@pytest.fixture(scope="module")
def app_server(test_database_url):
    """One app server process for a test module, on the same backends as the tests."""
    server = AppServer({"DATABASE_URL": test_database_url}).start()
    yield server
    server.stop()


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def session_for(client):
    """A logged-in session key for a user, usable by another process (commit first)."""

    def make(user) -> str:
        client.force_login(user)
        key = client.cookies["sessionid"].value
        client.cookies.clear()
        return key

    return make


def run(coro):
    return asyncio.run(coro)


def requires_redis():
    return pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
