"""The live layer under faults and load: concurrent joins, Redis outages, ended sessions."""

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import pytest
from django.urls import reverse

from tests.factories import StreamFactory
from tests.servers import AppServer

def get(server, path: str, session: str | None = None, method: str = "GET", body: str = "", headers=None):
    """(status, body) of one request to an app server."""
    connection = HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        all_headers = dict(headers or {})
        if session:
            all_headers["Cookie"] = f"sessionid={session}" + all_headers.pop("Cookie", "")
        connection.request(method, path, body=body or None, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


# -- Redis under concurrency ---------------------------------------------------------------


@pytest.mark.django_db
def test_threads_share_one_redis_client_safely(monkeypatch):
    if not os.environ.get("REDIS_URL"):
        pytest.skip("needs REDIS_URL (the PostgreSQL + Redis pass)")
    import random
    import time

    import redis

    import lms.realtime
    from lms.realtime import occupancy

    # Creating a client can be interrupted by a thread switch: make that likely.
    real_from_url = redis.Redis.from_url.__func__

    def slow_from_url(cls, *args, **kwargs):
        client = real_from_url(cls, *args, **kwargs)
        time.sleep(random.random() / 50)
        return client

    monkeypatch.setattr(redis.Redis, "from_url", classmethod(slow_from_url))
    for _ in range(3):  # each round starts with no client, as a fresh process does
        lms.realtime._redis.clear()
        start = threading.Barrier(100)

        def join(n):
            start.wait()
            time.sleep(random.random() / 50)
            return [occupancy(f"stream-{n}") for _ in range(5)]

        with ThreadPoolExecutor(100) as pool:
            assert list(pool.map(join, range(100))) == [[0] * 5] * 100
    lms.realtime._redis.clear()


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
def test_two_hundred_viewers_opening_a_stream_page_at_once_get_it(test_database_url, course, member, session_for):
    stream = StreamFactory(course=course, live=True)
    key = session_for(member)
    path = reverse("livestream:detail", args=[stream.pk])
    # A fresh process: the first requests are the ones that create its Redis client.
    server = AppServer({"DATABASE_URL": test_database_url}).start()
    try:
        start = threading.Barrier(200)

        def view(_):
            start.wait()
            return get(server, path, key)[0]

        with ThreadPoolExecutor(200) as pool:
            statuses = list(pool.map(view, range(200)))
        assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
        assert errors_logged(server) == []
    finally:
        server.stop()


# -- Redis down: writes answer as usual, ephemeral signals degrade -----------------------------

CSRF = "a" * 32


def post(server, path: str, session: str, data: dict | None = None):
    from urllib.parse import urlencode

    return get(
        server, path, session, method="POST", body=urlencode(data or {}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true",
            "X-CSRFToken": CSRF, "Cookie": f"; csrftoken={CSRF}",
        },
    )


def errors_logged(server) -> list[str]:
    text = server.log.read_text() if server.log.exists() else ""
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
def test_writes_answer_as_usual_while_redis_is_down(
    redis_server, test_database_url, course, member, session_for, settings
):
    from lms.chat.models import Message
    from lms.realtime import channel
    from tests.factories import RoomFactory
    from tests.sse import SSEClient

    room = RoomFactory(course=course)
    key = session_for(member)
    settings.REDIS_URL = redis_server.url
    server = AppServer({"DATABASE_URL": test_database_url, "REDIS_URL": redis_server.url}).start()
    try:
        async def scenario():
            name = channel("room", room.pk)
            async with SSEClient(f"{server.url}/events/?channel={name}", session=key) as stream:
                await stream.next_event(5, skip=())
                redis_server.stop()
                typing = await asyncio.to_thread(post, server, f"/chat/{room.pk}/typing/", key)
                sent = await asyncio.to_thread(
                    post, server, f"/chat/{room.pk}/messages/", key, {"body": "Sent during the outage"}
                )
                health = await asyncio.to_thread(get, server, "/healthz")
                assert (typing[0], sent[0]) == (204, 204), (typing, sent)
                assert health[0] == 503 and '"redis": "down"' in health[1]
                # Stored, and delivered from storage although Redis is still down.
                event = await stream.next_event(10, skip=("stream-open", "typing"))
                while event.type != "message_created":
                    event = await stream.next_event(10, skip=("stream-open", "typing"))
                assert "Sent during the outage" in event.data
                redis_server.start()

        asyncio.run(scenario())
        assert Message.objects.filter(room=room, body="Sent during the outage").count() == 1
        assert errors_logged(server) == []
    finally:
        server.stop()


# -- Sessions that end end their streams; every stream has a maximum lifetime -----------------


async def opened(*clients):
    for client in clients:
        assert await client.connect() == 200
        await client.next_event(5, skip=())


async def ended(client, within: float = 5) -> bool:
    try:
        while True:
            await client.next_event(within)
    except ConnectionError:
        return True
    except TimeoutError:
        return False


@pytest.mark.django_db(transaction=True)
def test_logging_out_ends_that_sessions_streams_only(app_server, course, member, session_for):
    from lms.realtime import channel, publish
    from lms.realtime.hub import run_db
    from tests.sse import SSEClient

    name = channel("course", course.pk)
    leaving, staying = session_for(member), session_for(member)
    url = f"{app_server.url}/events/?channel={name}"

    async def scenario():
        a1, a2, b = SSEClient(url, session=leaving), SSEClient(url, session=leaving), SSEClient(url, session=staying)
        await opened(a1, a2, b)
        status, _ = await asyncio.to_thread(post, app_server, "/accounts/logout/", leaving)
        assert status == 302
        assert await ended(a1) and await ended(a2)
        await run_db(publish, name, "note", "after the logout")
        assert (await b.next_event(5)).data == "after the logout"
        again = SSEClient(url, session=leaving)
        assert await again.connect() == 403
        for client in (a1, a2, b, again):
            await client.close()

    asyncio.run(scenario())
    assert errors_logged(app_server) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
def test_a_password_change_ends_the_users_streams_on_every_process(test_database_url, course, member, session_for):
    from lms.realtime import channel
    from lms.realtime.hub import run_db
    from tests.sse import SSEClient

    name = channel("course", course.pk)
    key = session_for(member)
    servers = [AppServer({"DATABASE_URL": test_database_url}).start() for _ in range(2)]

    def change_password():
        member.set_password("a new secret 123")
        member.save()

    try:
        async def scenario():
            clients = [SSEClient(f"{s.url}/events/?channel={name}", session=key) for s in servers]
            await opened(*clients)
            await run_db(change_password)
            for client in clients:
                assert await ended(client)
                await client.close()
            again = SSEClient(f"{servers[1].url}/events/?channel={name}", session=key)
            assert await again.connect() == 403
            await again.close()

        asyncio.run(scenario())
        assert [errors_logged(s) for s in servers] == [[], []]
    finally:
        for server in servers:
            server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_stream_closes_at_its_maximum_lifetime_and_resumes_without_loss(test_database_url, course, member, session_for):
    from lms.realtime import channel, publish
    from lms.realtime.hub import run_db
    from tests.sse import SSEClient

    name = channel("course", course.pk)
    key = session_for(member)
    server = AppServer({"DATABASE_URL": test_database_url, "REALTIME_STREAM_MAX_SECONDS": "3"}).start()
    url = f"{server.url}/events/?channel={name}"
    try:
        async def scenario():
            loop = asyncio.get_running_loop()
            stream = SSEClient(url, session=key)
            await opened(stream)
            began = loop.time()
            await run_db(publish, name, "note", "one")
            assert (await stream.next_event(5)).data == "one"
            assert await ended(stream, within=6)
            assert 2.3 < loop.time() - began < 4
            await stream.close()
            # Published while the page waits to reconnect: replayed, and nothing twice.
            await run_db(publish, name, "note", "two")
            assert stream.last_id == f"{name}:1"
            again = SSEClient(url, session=key, headers={"Last-Event-ID": stream.last_id})
            await opened(again)
            event = await again.next_event(5)
            assert (event.data, event.id) == ("two", f"{name}:2")
            await again.close()

        asyncio.run(scenario())
        assert errors_logged(server) == []
    finally:
        server.stop()


# -- A dead worker's streams stop counting within seconds --------------------------------------


async def open_streams(url: str, key: str, count: int, deadline: float) -> list:
    """`count` open streams, retrying refusals (429) until `deadline` (loop time)."""
    from tests.sse import SSEClient

    loop, held = asyncio.get_running_loop(), []
    while len(held) < count:
        client = SSEClient(url, session=key)
        status = await client.connect()
        if status == 200:
            held.append(client)
            continue
        await client.close()
        assert status == 429, status
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    return held


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
def test_a_killed_workers_streams_stop_counting_within_seconds(test_database_url, course, member, session_for):
    from lms.realtime import channel
    from tests.sse import SSEClient

    name = channel("course", course.pk)
    key = session_for(member)
    doomed, survivor = [AppServer({"DATABASE_URL": test_database_url}).start() for _ in range(2)]
    try:
        async def scenario():
            loop = asyncio.get_running_loop()
            on_doomed = await open_streams(f"{doomed.url}/events/?channel={name}", key, 7, loop.time())
            on_survivor = await open_streams(f"{survivor.url}/events/?channel={name}", key, 3, loop.time())
            assert (len(on_doomed), len(on_survivor)) == (7, 3)
            extra = SSEClient(f"{survivor.url}/events/?channel={name}", session=key)
            assert await extra.connect() == 429
            await extra.close()

            doomed.process.kill()  # SIGKILL: no clean-up of any kind
            killed = loop.time()
            back = await open_streams(f"{survivor.url}/events/?channel={name}", key, 7, killed + 10)
            recovered = loop.time() - killed
            assert len(back) == 7, f"{len(back)} of 7 streams back after {recovered:.1f} s"
            # The cap still holds: ten open, the eleventh refused.
            extra = SSEClient(f"{survivor.url}/events/?channel={name}", session=key)
            assert await extra.connect() == 429
            for client in [*on_doomed, *on_survivor, *back, extra]:
                await client.close()
            return recovered

        recovered = asyncio.run(scenario())
        print(f"stream cap recovered {recovered:.1f} s after SIGKILL")
        assert errors_logged(survivor) == []
    finally:
        doomed.stop()
        survivor.stop()


# -- The fault test: two gunicorn workers, Redis stopped for 10 s, then a worker killed --------


class Gunicorn:
    """The production server: gunicorn with two of the project's uvicorn workers."""

    def __init__(self, env: dict[str, str]):
        from tests.servers import ROOT, free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.log = ROOT / f".gunicorn-{self.port}.log"
        self.process = None

    def start(self) -> "Gunicorn":
        import subprocess
        import sys
        import time
        import urllib.request

        from tests.servers import ROOT

        env = {**os.environ, **self.env, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "lms.asgi:application", "-k", "lms.workers.UvicornWorker",
             "-w", "2", "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "3", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200 and len(self.workers()) == 2:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start: {self.log.read_text()[-2000:]}")

    def workers(self) -> list[int]:
        children = f"/proc/{self.process.pid}/task/{self.process.pid}/children"
        with open(children) as f:
            return [int(pid) for pid in f.read().split()]

    def busiest_worker(self) -> int:
        """The worker with the most open sockets (the one holding most streams)."""

        def sockets(pid: int) -> int:
            fds = f"/proc/{pid}/fd"
            return sum(os.readlink(f"{fds}/{fd}").startswith("socket:") for fd in os.listdir(fds))

        return max(self.workers(), key=sockets)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except Exception:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the PostgreSQL + Redis pass)")
def test_faults_cost_no_write_and_lose_nothing(redis_server, test_database_url, course, session_for, settings):
    """Clients hold streams and post steadily while Redis stops for 10 s and then a worker is
    killed: no write gets a 5xx, every stream that reconnects with its Last-Event-ID gets each
    message exactly once, and every user is back under the stream cap within 10 s."""
    import re
    import signal
    import uuid
    from urllib.parse import quote

    import redis

    from lms.chat.models import Message
    from lms.realtime import channel, last_event_id
    from tests.factories import RoomFactory, UserFactory
    from tests.sse import SSEClient

    room = RoomFactory(course=course)
    users = [UserFactory(username=f"fault{n}") for n in range(3)]
    for user in users:
        course.enrolments.create(user=user)
    keys = [session_for(user) for user in users]
    name = channel("room", room.pk)
    start_id = last_event_id([name]).rpartition(":")[2]
    settings.REDIS_URL = redis_server.url
    server = Gunicorn({
        "DATABASE_URL": test_database_url, "REDIS_URL": redis_server.url,
        "REALTIME_POLL_SECONDS": "0",  # as deployed: with Redis, storage is polled every 15 s
        "CHAT_FLOOD_LIMIT": "1000",
    }).start()
    STREAMS_PER_USER = 8  # of the 10 allowed

    class Stream:
        def __init__(self, key):
            self.key, self.ids, self.bodies, self.connected = key, [], [], False
            self.last = f"{quote(name)}:{start_id}"

        async def hold(self, stop: asyncio.Event):
            while not stop.is_set():
                client = SSEClient(f"{server.url}/events/?channel={name}", session=self.key,
                                   headers={"Last-Event-ID": self.last})
                try:
                    status = await client.connect()
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    status = None
                if status != 200:
                    await client.close()
                    await asyncio.sleep(0.2)
                    continue
                self.connected = True
                try:
                    while not stop.is_set():
                        try:
                            event = await client.next_event(0.5)
                        except TimeoutError:
                            continue
                        assert event.type not in ("stream-reset", "stream-error"), event
                        if event.type == "message_created":
                            self.ids.append(event.id)
                            self.bodies.extend(re.findall(r"fault-\d+-\d+", event.data))
                        self.last = client.last_id or self.last
                except (ConnectionError, OSError, asyncio.IncompleteReadError):
                    pass
                finally:
                    self.connected = False
                    self.last = client.last_id or self.last
                    await client.close()

    statuses: list[tuple[str, int]] = []  # (phase, status) of every write
    phase = {"now": "before"}
    sent: list[str] = []

    async def poster(n: int, stop: asyncio.Event):
        count = 0
        while not stop.is_set():
            body, token = f"fault-{n}-{count}", str(uuid.uuid4())
            for _ in range(10):  # a request cut by the killed worker is retried, same token
                try:
                    status, _ = await asyncio.to_thread(
                        post, server, f"/chat/{room.pk}/messages/", keys[n], {"body": body, "client_token": token}
                    )
                    break
                except OSError:
                    await asyncio.sleep(0.2)
            statuses.append((phase["now"], status))
            if status == 204:
                sent.append(body)
            count += 1
            await asyncio.sleep(0.4)

    async def scenario():
        loop = asyncio.get_running_loop()
        stop_streams, stop_posts = asyncio.Event(), asyncio.Event()
        streams = [Stream(key) for key in keys for _ in range(STREAMS_PER_USER)]
        holders = [asyncio.create_task(s.hold(stop_streams)) for s in streams]
        deadline = loop.time() + 20
        while not all(s.connected for s in streams):
            assert loop.time() < deadline, "streams did not open"
            await asyncio.sleep(0.1)
        posters = [asyncio.create_task(poster(n, stop_posts)) for n in range(len(users))]
        await asyncio.sleep(2)

        phase["now"] = "outage"
        redis_server.stop()
        await asyncio.sleep(10)
        redis_server.start()
        phase["now"] = "after"
        back = loop.time()

        # Redis came back empty: wait until the workers have counted their streams in it again.
        counted = redis.Redis.from_url(redis_server.url)
        while sum(
            int(n) for key in counted.scan_iter(f"{settings.REALTIME_REDIS_PREFIX}:realtime:streams-of:*")
            for n in counted.hvals(key)
        ) < len(streams):
            assert loop.time() - back < 10, "the stream counts did not come back to Redis"
            await asyncio.sleep(0.1)
        counted.close()
        os.kill(server.busiest_worker(), signal.SIGKILL)
        killed = loop.time()
        while all(s.connected for s in streams):  # the killed worker's streams see the end
            assert loop.time() - killed < 5, "no stream was on the killed worker"
            await asyncio.sleep(0.05)
        dropped = sum(not s.connected for s in streams)
        while not all(s.connected for s in streams):
            assert loop.time() - killed < 10, (
                f"{sum(not s.connected for s in streams)} streams still refused 10 s after the kill"
            )
            await asyncio.sleep(0.1)
        recovered = loop.time() - killed
        await asyncio.sleep(2)
        stop_posts.set()
        await asyncio.gather(*posters)

        deadline = loop.time() + 20  # the last messages reach every stream
        while any(set(s.bodies) != set(sent) for s in streams) and loop.time() < deadline:
            await asyncio.sleep(0.2)
        stop_streams.set()
        await asyncio.gather(*holders)
        return streams, recovered, dropped

    try:
        streams, recovered, dropped = asyncio.run(scenario())
        # gunicorn reports the worker it saw killed, as expected here; nothing else may be an error.
        logged = [line for line in errors_logged(server) if "was sent SIGKILL" not in line]
    finally:
        server.stop()
    by_phase = {p: [s for q, s in statuses if q == p] for p in ("before", "outage", "after")}
    print(f"writes: { {p: len(v) for p, v in by_phase.items()} }; 5xx: "
          f"{ {p: sum(s >= 500 for s in v) for p, v in by_phase.items()} }; "
          f"{dropped} of {len(streams)} streams cut by SIGKILL, all back {recovered:.1f} s after it")
    assert [s for _, s in statuses if s != 204] == []
    assert len(by_phase["outage"]) >= 10
    assert Message.objects.filter(room=room).count() == len(sent)
    for stream in streams:
        assert sorted(stream.bodies) == sorted(sent)  # nothing lost, nothing twice
        assert len(stream.ids) == len(set(stream.ids))
    assert recovered < 10
    assert logged == []
