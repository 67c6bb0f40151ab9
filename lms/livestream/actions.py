"""Every write to livestreams: each saves, then announces once the transaction commits."""

from django.db import transaction
from django.utils import timezone

from lms.accounts.models import User
from lms.chat.models import Room
from lms.courses.models import Course
from lms.livestream.models import Recording, Stream, StreamViewer, ViewerSample
from lms.realtime import channel, publish_fragment_on_commit, publish_on_commit


class StreamStateError(Exception):
    """Starting an ended stream, or ending one that is not live."""


def _announce_change(stream: Stream) -> None:
    # Pages re-fetch their own part (the stage carries a per-viewer token): the event says when.
    for name in (channel("stream", stream.pk), channel("stream_manage", stream.pk), channel("course", stream.course_id)):
        publish_on_commit(name, "stream_changed", str(stream.pk))


def room_name(stream: Stream) -> str:
    """A stream's chat room is called after the stream (rooms' names are shorter)."""
    title = stream.title.strip()
    return title if len(title) <= 80 else title[:79].rsplit(" ", 1)[0].rstrip(" ,;:-") + "…"


def _ensure_chat_room(stream: Stream) -> None:
    if stream.chat_enabled and stream.chat_room_id is None:
        stream.chat_room = Room.objects.create(
            kind=Room.Kind.STREAM, course=stream.course, name=room_name(stream), created_by=stream.created_by
        )
        stream.save(update_fields=["chat_room"])


@transaction.atomic
def do_create_stream(course: Course, *, creator: User, **fields) -> Stream:
    """Schedule a stream. Assumes `creator` teaches `course` (checked by the form)."""
    stream = Stream.objects.create(course=course, created_by=creator, **fields)
    _ensure_chat_room(stream)
    _announce_change(stream)
    return stream


@transaction.atomic
def do_update_stream(stream: Stream, **fields) -> Stream:
    for name, value in fields.items():
        setattr(stream, name, value)
    stream.save()
    # The chat follows the stream to a new course: its room is readable by that course only.
    Room.objects.filter(pk=stream.chat_room_id).exclude(course=stream.course_id).update(course=stream.course_id)
    Room.objects.filter(pk=stream.chat_room_id).exclude(name=room_name(stream)).update(name=room_name(stream))
    _ensure_chat_room(stream)
    _announce_change(stream)
    return stream


@transaction.atomic
def do_start_stream(stream: Stream, *, actor: User) -> Stream:
    """Go live (also before the scheduled time). Starting a live stream again changes nothing."""
    stream = Stream.objects.select_for_update().get(pk=stream.pk)
    if stream.is_ended:
        raise StreamStateError("This stream has ended; schedule a new one.")
    if stream.is_live:
        return stream
    stream.state = Stream.State.LIVE
    stream.started_at = timezone.now()
    stream.save(update_fields=["state", "started_at"])
    _announce_change(stream)
    return stream


@transaction.atomic
def do_end_stream(stream: Stream, *, actor: User) -> Stream:
    """End a live stream, once."""
    stream = Stream.objects.select_for_update().get(pk=stream.pk)
    if not stream.is_live:
        raise StreamStateError("Only a live stream can be ended.")
    stream.state = Stream.State.ENDED
    stream.ended_at = timezone.now()
    stream.save(update_fields=["state", "ended_at"])
    _announce_change(stream)
    # So that no question is forgotten: the unanswered ones go to the course room.
    from lms.qa.actions import do_post_unanswered_summary

    do_post_unanswered_summary(stream, author=actor)
    return stream


def do_note_viewer(stream: Stream, *, user: User) -> None:
    """Remember that `user` watched (one row per person, for unique viewers)."""
    StreamViewer.objects.get_or_create(stream=stream, user=user)


@transaction.atomic
def do_record_viewer_count(stream_id: int, count: int) -> None:
    """Called by lms.realtime at most once a second per stream with the open stream pages.

    Keeps the peak (a write only when it rises) and pushes the count to viewers and the panel.
    """
    Stream.objects.filter(pk=stream_id, peak_viewers__lt=count).update(peak_viewers=count)
    if Stream.objects.filter(pk=stream_id, state=Stream.State.LIVE).exists():
        # One point per minute for the viewers chart: the last count announced in that minute.
        minute = timezone.now().replace(second=0, microsecond=0)
        ViewerSample.objects.update_or_create(stream_id=stream_id, minute=minute, defaults={"viewers": count})
    row = Stream.objects.filter(pk=stream_id).values_list("peak_viewers", "state").first()
    if row is None:
        return
    peak, state = row
    context = {"viewers": count, "peak": peak, "ended": state == Stream.State.ENDED, "oob": True}
    # Stored: a page rendered just before this announcement connects just after it, and
    # replays it, instead of showing the count it was rendered with until the next change.
    for name in (channel("stream", stream_id), channel("stream_manage", stream_id)):
        publish_fragment_on_commit(name, "viewers_changed", "livestream/detail.html#viewer-count", context)


@transaction.atomic
def do_attach_recording(stream: Stream, *, actor: User, file=None, url: str = "", page_url: str = "") -> Recording:
    """Attach (or replace) a past stream's recording and tell the course: its pages update live,
    and the first time, a message in the course room mentions @all, which notifies every member
    (a replacement is at the same page: nobody is notified twice). A replaced file is deleted
    from storage once the transaction commits."""
    from lms.chat.actions import do_create_room, do_post_message

    old = Recording.objects.filter(stream=stream).first()
    if old is not None:
        old.delete()
        if old.file:
            old_file = old.file
            transaction.on_commit(lambda: old_file.storage.delete(old_file.name), robust=True)
    recording = Recording.objects.create(stream=stream, file=file or "", url="" if file else url, added_by=actor)
    _announce_change(stream)
    if old is not None:
        return recording
    room = Room.objects.filter(course=stream.course, kind=Room.Kind.COURSE).order_by("pk").first()
    if room is None:
        room = do_create_room(stream.course, creator=actor, name="General")
    text = f"@all The recording of **{stream.title}** is up"
    do_post_message(room, author=actor, body=f"{text}: {page_url}" if page_url else f"{text}.")
    return recording
