import asyncio
import os

import pytest

from tests.factories import CourseFactory, InstructorFactory, UserFactory
from tests.servers import AppServer, RedisServer, database_url


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
def sent_events(monkeypatch):
    """What actions publish: (channel, event, data) for each event, nothing is sent."""
    import lms.realtime

    sent = []

    def capture(channel, event, data, *, stored=True):
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
