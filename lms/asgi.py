"""ASGI entry point: Django for pages and posts, lms.realtime for event streams.

Event streams bypass Django's request handler, which would keep a thread (and, for a
logged-in user, a database connection) for as long as each stream stays open.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms.settings")

django_application = get_asgi_application()

from lms.realtime.asgi import EventStreamRouter  # noqa: E402  (needs settings loaded)

application = EventStreamRouter(django_application)
