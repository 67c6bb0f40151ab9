"""Fan-out across processes through Redis, and recovery when Redis restarts."""

import asyncio
import os

import pytest
from django.db import connection

from lms.courses.actions import do_unenrol_user
from lms.realtime import channel, publish
from lms.realtime.hub import run_db
from tests.conftest import run
from tests.factories import UserFactory
from tests.servers import AppServer
from tests.sse import SSEClient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)"),
]


@pytest.fixture(scope="module")
def two_servers(test_database_url):
    # The storage poll is slowed right down: delivery here must come through Redis.
    env = {"DATABASE_URL": test_database_url, "REALTIME_POLL_SECONDS": "600"}
    servers = [AppServer(env).start(), AppServer(env).start()]
    yield servers
    for server in servers:
        server.stop()


def url(server, name):
    return f"{server.url}/events/?channel={name}"


def test_an_event_reaches_subscribers_of_every_server_process(two_servers, course, member, session_for):
    name = channel("course", course.pk)
    key = session_for(member)

    async def scenario():
        async with SSEClient(url(two_servers[0], name), session=key) as a, \
                SSEClient(url(two_servers[1], name), session=key) as b:
            for client in (a, b):
                await client.next_event(5, skip=())
            await run_db(publish, name, "note_created", "<li>to all</li>")
            got = await asyncio.gather(a.next_event(3), b.next_event(3))
            assert [(e.data, e.id) for e in got] == [("<li>to all</li>", f"{name}:1")] * 2

    run(scenario())


def test_removing_a_member_ends_their_streams_on_every_process(two_servers, course, member, session_for):
    name = channel("course", course.pk)
    key = session_for(member)

    async def scenario():
        async with SSEClient(url(two_servers[0], name), session=key) as a, \
                SSEClient(url(two_servers[1], name), session=key) as b:
            for client in (a, b):
                await client.next_event(5, skip=())
            await run_db(do_unenrol_user, course, user=member)
            for client in (a, b):
                event = await client.next_event(5)
                assert event.type == "stream-error"
                assert event.json()["channels"] == [name]
            await run_db(publish, name, "note_created", "<li>members only</li>")
            for client in (a, b):
                with pytest.raises(ConnectionError):
                    await client.next_event(2)

    run(scenario())


def test_the_stream_limit_holds_across_processes(two_servers, member, session_for):
    name = channel("user", member.pk)
    key = session_for(member)

    async def scenario():
        clients = [SSEClient(url(two_servers[n % 2], name), session=key) for n in range(10)]
        for client in clients:
            assert await client.connect() == 200
        for server in two_servers:
            extra = SSEClient(url(server, name), session=key)
            assert await extra.connect() == 429
            await extra.close()
        for client in clients:
            await client.close()

    run(scenario())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts PostgreSQL connections")
def test_waiting_streams_hold_no_database_connection(two_servers, course, session_for):
    name = channel("course", course.pk)
    keys = []
    for n in range(5):  # 50 streams: ten for each of five members (the per-user limit)
        student = UserFactory(username=f"waiting{n}")
        course.enrolments.create(user=student)
        keys.append(session_for(student))

    def others() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    async def scenario():
        # The test's own connections (this thread's, the factories') are the baseline.
        baseline = await run_db(others)
        clients = [SSEClient(url(two_servers[n % 2], name), session=keys[n % 5]) for n in range(50)]
        for client in clients:
            assert await client.connect() == 200
            await client.next_event(5, skip=())
        counts = []
        for _ in range(5):
            counts.append(await run_db(others) - baseline)
            await asyncio.sleep(0.2)
        await run_db(publish, name, "n", "still alive")
        received = [(await client.next_event(5)).data for client in clients]
        assert received == ["still alive"] * 50
        for client in clients:
            await client.close()
        return counts

    assert run(scenario()) == [0, 0, 0, 0, 0]


def test_delivery_resumes_after_redis_restarts(redis_server, test_database_url, course, member, session_for, settings):
    name = channel("course", course.pk)
    key = session_for(member)
    settings.REDIS_URL = redis_server.url
    server = AppServer({"DATABASE_URL": test_database_url, "REDIS_URL": redis_server.url,
                        "REALTIME_POLL_SECONDS": "600"}).start()
    try:
        async def scenario():
            async with SSEClient(url(server, name), session=key) as client:
                await client.next_event(5, skip=())
                await run_db(publish, name, "n", "before")
                assert (await client.next_event(3)).data == "before"

                redis_server.stop()
                # Saved while Redis is down: the publisher logs and carries on.
                await run_db(publish, name, "n", "during")
                await asyncio.sleep(1)
                redis_server.start()

                assert (await client.next_event(10)).data == "during"
                await run_db(publish, name, "n", "after")
                event = await client.next_event(5)
                assert (event.data, event.id) == ("after", f"{name}:3")

        run(scenario())
    finally:
        server.stop()
