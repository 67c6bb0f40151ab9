"""A request's announcements go out once its response is sent, all in one go."""

import asyncio
import uuid
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

import lms.realtime.hub
from lms.asgi import application, django_application
from lms.chat.models import Message
from lms.realtime import last_event_id, publish
from lms.realtime.outbox import after_response
from tests.conftest import requires_redis
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def in_request_thread(fn, *args):
    """Call `fn` as a view would (in a thread, in the request's context), and give the
    thread's database connection back, so that the test database can be dropped at the end."""

    def call():
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return await sync_to_async(call)()


@pytest.fixture
def hub(monkeypatch, settings):
    """This process's hub, as a log of what it is handed (no Redis: the hub is the announcer)."""
    settings.REDIS_URL = ""
    log = []

    class FakeHub:
        class loop:  # what other threads hand the hub runs at once
            @staticmethod
            def call_soon_threadsafe(callback, *args):
                callback(*args)

        def deliver(self, channel, event_type, data, eid):
            log.append(("deliver", channel, event_type, eid))

        def recheck_user(self, user_id):
            pass  # a session ended (the test client's logins): nothing of this test

    monkeypatch.setattr(lms.realtime.hub, "current_hub", lambda: FakeHub())
    monkeypatch.setattr(lms.realtime, "current_hub", lambda: FakeHub())
    return log


def test_inside_a_request_an_event_is_stored_at_once_and_announced_at_the_end(hub):
    async def scenario():
        async with after_response():
            eid = await in_request_thread(publish, "course-5", "m", "<p>one</p>")
            stored = await in_request_thread(last_event_id, ["course-5"])
            assert hub == []
            await in_request_thread(publish, "course-5", "m", "<p>two</p>")
            assert hub == []
        return eid, stored

    eid, stored = asyncio.run(scenario())
    assert stored == f"course-5:{eid}"
    assert hub == [("deliver", "course-5", "m", eid), ("deliver", "course-5", "m", eid + 1)]


def test_outside_a_request_an_event_is_announced_at_once(monkeypatch, settings):
    settings.REDIS_URL = ""
    calls = []

    class FakeLoop:
        def call_soon_threadsafe(self, *args):
            calls.append(args)

    class FakeHub:
        loop = FakeLoop()

        def deliver(self, *args):
            raise AssertionError("delivered on the publisher's thread, not the hub's loop")

    monkeypatch.setattr(lms.realtime, "current_hub", lambda: FakeHub())
    eid = publish("course-5", "m", "<p>now</p>")
    assert [args[1:] for args in calls] == [("course-5", "m", "<p>now</p>", eid)]


@requires_redis()
def test_a_requests_announcements_reach_redis_after_it(settings):
    import redis

    from lms.realtime.hub import redis_key

    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_key("events"))
    pubsub.get_message(timeout=1)

    async def scenario():
        async with after_response():
            await in_request_thread(publish, "course-6", "m", "<p>one</p>")
            await in_request_thread(publish, "course-6", "m", "<p>two</p>")
            await asyncio.sleep(0.2)
            assert pubsub.get_message(timeout=0.2) is None

    try:
        asyncio.run(scenario())
        received = [pubsub.get_message(timeout=2) for _ in range(2)]
    finally:
        pubsub.close()
        client.close()
    assert [m is not None and b"<p>one</p>" in m["data"] for m in received] == [True, False]
    assert b"<p>two</p>" in received[1]["data"]


def asgi_post(path: str, body: dict, cookies: dict, headers: dict, log: list) -> None:
    """POST through the project's ASGI application, noting each message it sends in `log`."""
    encoded = urlencode(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(encoded)).encode()),
            (b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ],
    }
    received = [{"type": "http.request", "body": encoded, "more_body": False}]

    async def receive():
        if received:
            return received.pop(0)
        await asyncio.Event().wait()  # the client stays; Django stops listening once it answers

    async def send(message):
        log.append(("send", message["type"], message.get("status")))

    asyncio.run(application(scope, receive, send))


def test_a_post_is_answered_before_its_message_is_announced(client, hub, course, member):
    """The poster's answer does not wait for this worker to push the message to every stream."""
    room = RoomFactory(course=course)
    client.force_login(member)
    csrf = "c" * 32
    asgi_post(
        f"/chat/{room.pk}/messages/",
        {"body": "Hello", "client_token": str(uuid.uuid4())},
        {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
        {"x-csrftoken": csrf, "hx-request": "true"},
        hub,
    )
    assert Message.objects.filter(room=room, body="Hello").exists()
    kinds = [entry[:3] for entry in hub]
    answer = kinds.index(("send", "http.response.start", 204))
    announced = kinds.index(("deliver", f"room-{room.pk}", "message_created"))
    assert answer < announced
    # Both of the post's events (the room's message, chat home's line) went out together, after.
    assert [k[2] for k in kinds[answer:] if k[0] == "deliver"] == ["message_created", "room_summary"]


def test_django_runs_the_middleware_chain_synchronously():
    assert not asyncio.iscoroutinefunction(django_application._middleware_chain)
