"""The project's ASGI application: event streams here, everything else to Django."""

import asyncio
import gc
import logging
import threading

from lms.realtime import STREAM_PATH
from lms.realtime.outbox import after_response
from lms.realtime.stream import respond, serve_stream

logger = logging.getLogger(__name__)
_stopping = threading.Event()  # the server was told to stop: open no more streams


class EventStreamRouter:
    def __init__(self, django_app, path: str = STREAM_PATH):
        self.django_app = django_app
        self.path = path
        self.slots: asyncio.Semaphore | None = None

    def request_slots(self) -> asyncio.Semaphore:
        """At most REQUEST_CONCURRENCY Django requests of this process run at once.

        Django runs each request in a thread of its own, and each thread borrows a database
        connection: a thousand pages opened at once (the start of a lecture) would be a thousand
        threads waiting on a pool of ten, and those still waiting after its timeout would fail
        with a 500. Past the limit a request waits here, on the event loop, for its turn.
        """
        if self.slots is None:
            from django.conf import settings

            self.slots = asyncio.Semaphore(settings.REQUEST_CONCURRENCY)
        return self.slots

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == scope.get("root_path", "") + self.path:
            if _stopping.is_set():  # a page reconnecting in the last moments: not here
                await respond(send, 503, "unavailable", "The server is restarting.", headers=[(b"retry-after", b"1")])
            else:
                await serve_stream(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            async with after_response():
                async with self.request_slots():
                    await self.django_app(scope, receive, send)
        else:
            await self.django_app(scope, receive, send)

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                warm_up()
                end_streams_on_exit()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from lms.realtime import hub

                if hub._hub is not None:
                    await hub._hub.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def end_streams_on_exit() -> None:
    """When the server is told to stop (SIGTERM from gunicorn or a platform, Ctrl+C), end every
    open stream at once, cleanly.

    The server then waits for its open responses before it stops, and event streams never end
    by themselves: without this, each restart would wait out the graceful period and then cancel
    every stream, with an error in the log for each. The pages reconnect (to another worker or to
    the restarted one) and replay what they missed. The server's own handler still runs: this
    one is chained before it (uvicorn installs its handlers with `signal.signal` before the
    application starts).
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()

    def end_streams() -> None:
        from lms.realtime import hub

        if hub._hub is not None and hub._hub.loop is loop:
            hub._hub.stopping = True
            for subscribers in list(hub._hub.by_user.values()):
                for subscriber in list(subscribers):
                    subscriber.end()

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def handler(number, frame, previous=previous):
            _stopping.set()
            loop.call_soon_threadsafe(end_streams)
            previous(number, frame)

        signal.signal(signum, handler)


def warm_up() -> None:
    """Import every view before the first request, then freeze what start-up made.

    Objects that live as long as the process (modules, URL patterns, settings) are moved out
    of the garbage collector's sight, so its passes over the short-lived objects of requests
    and events stay short however much the process loaded.
    """
    from django.urls import get_resolver

    try:
        get_resolver().url_patterns
    except Exception:  # a broken URLconf is reported by the first request, as usual
        logger.exception("Could not load the URL configuration at start-up.")
    gc.freeze()
