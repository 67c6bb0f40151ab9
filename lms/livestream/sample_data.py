"""One live, one upcoming and one past stream in a course with sample students, for the demo."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from lms.chat.actions import do_post_message
from lms.livestream.actions import do_create_stream, do_end_stream, do_note_viewer, do_start_stream
from lms.livestream.models import Recording, Stream, ViewerSample

STREAMS = [
    # title, starts in (hours), state
    ("Cell biology: live lecture", -0.25, Stream.State.LIVE),
    ("Genetics Q&A session", 26, Stream.State.SCHEDULED),
    ("Lab safety walkthrough", -72, Stream.State.ENDED),
]


@transaction.atomic
def create(sample) -> None:
    course = sample.courses["BIO101"]
    host = sample.people["ines"]
    now = timezone.now()
    for title, hours, state in STREAMS:
        if Stream.objects.filter(course=course, title=title).exists():
            continue
        starts = now + timedelta(hours=hours)
        stream = do_create_stream(
            course, creator=host, title=title, starts_at=starts, ends_at=starts + timedelta(hours=1),
            description="Sample stream: open it to see the waiting room, the live page or the ended page.",
        )
        if state in (Stream.State.LIVE, Stream.State.ENDED):
            stream = do_start_stream(stream, actor=host)
            do_post_message(stream.chat_room, author=sample.people["ana"], body="Hello from the live chat!")
            for username in ("ana", "ben", "chloe"):
                do_note_viewer(stream, user=sample.people[username])
        if state == Stream.State.ENDED:
            do_end_stream(stream, actor=host)
            Stream.objects.filter(pk=stream.pk).update(started_at=starts, ended_at=starts + timedelta(hours=1))
            stream.chat_room.messages.update(created=starts + timedelta(minutes=4))
            stream.refresh_from_db()
            # A coarse audience curve and a recording link, for the past stream's pages.
            for minute, viewers in enumerate([2, 5, 9, 12, 12, 11, 8, 4]):
                ViewerSample.objects.create(
                    stream=stream, minute=stream.started_at.replace(second=0, microsecond=0) + timedelta(minutes=minute),
                    viewers=viewers,
                )
            Stream.objects.filter(pk=stream.pk).update(peak_viewers=12)
            Recording.objects.create(stream=stream, url="https://archive.org/download/lab-safety/lab-safety.mp4", added_by=host)
