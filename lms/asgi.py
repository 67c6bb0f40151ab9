"""ASGI entry point: Django for pages and posts, lms.realtime for event streams.

Event streams bypass Django's request handler, which would keep a thread (and, for a
logged-in user, a database connection) for as long as each stream stays open.
"""

import os

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms.settings")


class OneThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler, running each request's middleware and view in one thread call.

    Served over ASGI, Django's own handler runs an async middleware chain: each synchronous
    step of each middleware (`process_request`, `process_view`, `process_response`) then goes
    to a thread and back, about twenty hops a request with our middleware, each one a wake-up
    of the event loop that also serves every open event stream. All our views are
    synchronous, so the chain runs synchronously, in one hop; the event loop still reads the
    request and writes the response.
    """

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


django.setup(set_prefix=False)
django_application = OneThreadASGIHandler()

from lms.bodylimit import BodyLimit  # noqa: E402  (needs settings loaded)
from lms.realtime.asgi import EventStreamRouter  # noqa: E402

application = BodyLimit(EventStreamRouter(django_application))
