"""A user's livestreams as an iCalendar feed (RFC 5545, with RFC 7986's NAME and REFRESH-INTERVAL),
for calendar apps that subscribe by URL. Everything is in UTC, so the feed needs no VTIMEZONE."""

from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.http.request import split_domain_port
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from icalendar import Calendar, Event, vDuration

from lms.livestream.models import Stream

PRODID = "-//Course live//Livestreams//EN"
LOCATION = "Course live (online)"
REFRESH = timedelta(hours=1)
PAST_WINDOW = timedelta(days=180)
# A staff member sees every course's streams: keep the feed a size calendar apps accept.
MAX_EVENTS = 1000


def calendar_for(user, request) -> bytes:
    """The streams of `user`'s courses (every course for staff) from the last 180 days and the future."""
    now = timezone.now()
    cutoff = now - PAST_WINDOW
    streams = (
        Stream.objects.for_member(user)
        .filter(Q(ends_at__gte=cutoff) | Q(ended_at__gte=cutoff))
        .select_related("course", "recording")
        .order_by("-starts_at", "-pk")[:MAX_EVENTS]
    )
    host = split_domain_port(request.get_host())[0] or request.get_host()

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    name = f"Course live: {user.name}"
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH))
    for stream in streams:
        calendar.add_component(_event(stream, request, host=host, stamp=now))
    return calendar.to_ical()


def _event(stream: Stream, request, *, host: str, stamp: datetime) -> Event:
    start, end = _times(stream)
    page_url = request.build_absolute_uri(reverse("livestream:detail", args=[stream.pk]))
    url = page_url
    lines = [stream.description.strip()] if stream.description.strip() else []
    lines.append(page_url)
    recording = _recording(stream)
    if recording is not None:
        recording_page = _recording_page(stream, request)
        url = recording_page or url
        lines.append(f"Recording: {recording_page or request.build_absolute_uri(recording.source)}")
    return Event.new(
        uid=f"stream-{stream.pk}@{host}",
        # No METHOD: DTSTAMP is when the entry was last revised; streams keep no such time, so "now".
        stamp=stamp.astimezone(UTC),
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        summary=f"{stream.course.code}: {stream.title}",
        description="\n\n".join(lines),
        url=url,
        location=LOCATION,
        status="CONFIRMED",
    )


def _times(stream: Stream) -> tuple[datetime, datetime]:
    """The scheduled slot; for an ended stream, when it actually ran (DTEND must follow DTSTART)."""
    if stream.is_ended:
        start = stream.started_at or stream.starts_at
        end = stream.ended_at or stream.ends_at
        if end > start:
            return start, end
    return stream.starts_at, stream.ends_at


def _recording(stream: Stream):
    if not stream.is_ended:
        return None
    try:
        return stream.recording
    except Stream.recording.RelatedObjectDoesNotExist:
        return None


def _recording_page(stream: Stream, request) -> str | None:
    try:
        return request.build_absolute_uri(reverse("livestream:recording", args=[stream.pk]))
    except NoReverseMatch:  # the recording page is newer than this feed; fall back to the stream page
        return None
