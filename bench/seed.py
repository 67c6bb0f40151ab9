"""Fill the throwaway bench database: one course and room, its members, their sessions.

Run by bench/run.py with the bench's environment (DJANGO_SETTINGS_MODULE=lms.settings and
DATABASE_URL pointing at the throwaway database); prints one JSON object:

    {"room_id", "course_id", "poster_session", "sessions": [...], "fragment", "fragment_bytes",
     "stream_id", "stream_room_id"}

Each reader gets a session of their own (one stream per user, as browsers would have), made
the way `django.contrib.auth.login` makes it, written in bulk. `fragment` is the app's own
`message_created` fragment for a bench message, with the message text replaced by "{token}":
the yardstick sends the same bytes. `stream_id` is a live stream of the course with its own
chat room (figure 6: its readers are the stream's viewers, the poster chats in its room).
"""

import json
import sys
from datetime import timedelta
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.sessions.models import Session  # noqa: E402
from django.db import transaction  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

from lms.accounts.models import User  # noqa: E402
from lms.chat.models import Message, Room  # noqa: E402
from lms.chat.text import render_message  # noqa: E402
from lms.courses.models import Course, Enrolment  # noqa: E402
from lms.livestream.models import Stream  # noqa: E402

BACKEND = "django.contrib.auth.backends.ModelBackend"
SAMPLE_TOKEN = "BQ000000T0000000000000000000E"


def session_for(user: User, store_class) -> Session:
    data = {SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: BACKEND, HASH_SESSION_KEY: user.get_session_auth_hash()}
    return Session(
        session_key=get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789"),
        session_data=store_class().encode(data),
        expire_date=timezone.now() + timedelta(days=1),
    )


@transaction.atomic
def seed(readers: int) -> dict:
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    course = Course.objects.create(code="BENCH", title="Benchmark course")
    poster = User.objects.create(username="poster", display_name="Poster", password="!bench-poster")
    readers_list = User.objects.bulk_create(
        [User(username=f"reader{i}", password=f"!bench-{i}") for i in range(readers)], batch_size=2000
    )
    Enrolment.objects.bulk_create(
        [Enrolment(course=course, user=user) for user in [poster, *readers_list]], batch_size=2000
    )
    room = Room.objects.create(kind=Room.Kind.COURSE, course=course, name="Bench room", created_by=poster)
    sessions = [session_for(user, store_class) for user in [poster, *readers_list]]
    Session.objects.bulk_create(sessions, batch_size=2000)

    # The fragment the app pushes for a bench message, rendered the way the action renders it.
    message = Message.objects.create(
        room=room, author=poster, body=SAMPLE_TOKEN, body_html=render_message(SAMPLE_TOKEN)
    )
    message = Message.objects.with_related().get(pk=message.pk)
    fragment = render_to_string("chat/room.html#message", {"message": message}).strip()
    message.delete()

    # A live lecture with its chat, as do_create_stream and do_start_stream leave it (without
    # announcing it: no page is open yet).
    now = timezone.now()
    stream_room = Room.objects.create(kind=Room.Kind.STREAM, course=course, name="Livestream", created_by=poster)
    stream = Stream.objects.create(
        course=course, title="Benchmark lecture", starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=2),
        state=Stream.State.LIVE, started_at=now, chat_room=stream_room, created_by=poster,
    )
    return {
        "stream_id": stream.pk,
        "stream_room_id": stream_room.pk,
        "room_id": room.pk,
        "course_id": course.pk,
        "poster_session": sessions[0].session_key,
        "sessions": [s.session_key for s in sessions[1:]],
        "fragment": fragment.replace(SAMPLE_TOKEN, "{token}"),
        "fragment_bytes": len(fragment.encode()),
    }


if __name__ == "__main__":
    print(json.dumps(seed(int(sys.argv[1]))))
