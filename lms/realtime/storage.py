"""django-eventstream's event storage (the database): appending, replays and catch-up.

`EventStorage` keeps `DjangoModelStorage`'s tables and id scheme (a counter per channel, an
`eid = 0` placeholder so a page can resume from 0) but appends in one round trip on
PostgreSQL, where the original takes seven (counter get-or-create, a transaction, a locked
read, the placeholder, the insert, the counter update, and a trim query on every append),
and trims old events at most once a minute, in one DELETE.
"""

from __future__ import annotations

import datetime
import json
import threading
import time

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import Count, Func, IntegerField, Sum
from django.utils import timezone
from django_eventstream.event import Event
from django_eventstream.models import EventCounter
from django_eventstream.models import Event as StoredEvent
from django_eventstream.storage import EVENT_TIMEOUT, DjangoModelStorage

from lms.realtime.copies import forget_before

TRIM_EVERY = 60.0  # seconds between trims, per process

_APPEND_SQL = """
WITH counter AS (
    INSERT INTO {counter} (name, value, updated) VALUES (%(channel)s, 1, now())
    ON CONFLICT (name) DO UPDATE SET value = {counter}.value + 1, updated = now()
    RETURNING value
), placeholder AS (
    INSERT INTO {event} (channel, type, data, eid, created)
    SELECT %(channel)s, '', '', 0, now() FROM counter WHERE value = 1
    ON CONFLICT (channel, eid) DO NOTHING
)
INSERT INTO {event} (channel, type, data, eid, created)
SELECT %(channel)s, %(type)s, %(data)s, value, now() FROM counter
RETURNING eid
"""

_trim_lock = threading.Lock()
_last_trim = 0.0


class EventStorage(DjangoModelStorage):
    def append_event(self, channel, event_type, data):
        encoded = json.dumps(data, cls=DjangoJSONEncoder)
        if connection.vendor == "postgresql":
            sql = _APPEND_SQL.format(
                counter=connection.ops.quote_name(EventCounter._meta.db_table),
                event=connection.ops.quote_name(StoredEvent._meta.db_table),
            )
            with connection.cursor() as cursor:
                cursor.execute(sql, {"channel": channel, "type": event_type, "data": encoded})
                (eid,) = cursor.fetchone()
        else:  # SQLite serializes writers: the model's own way is as good as any
            stored = StoredEvent(channel=channel, type=event_type, data=encoded)
            stored.save()
            eid = stored.eid
        self.trim_event_log()
        return Event(channel, event_type, data, id=eid)

    def trim_event_log(self):
        """Drop events older than django-eventstream's EVENT_TIMEOUT, at most once a minute."""
        global _last_trim
        now = time.monotonic()
        if now - _last_trim < TRIM_EVERY or not _trim_lock.acquire(blocking=False):
            return
        try:
            _last_trim = now
            cutoff = timezone.now() - datetime.timedelta(minutes=EVENT_TIMEOUT)
            StoredEvent.objects.filter(created__lt=cutoff).delete()
            forget_before(cutoff)
        finally:
            _trim_lock.release()


def current_ids(channels: list[str]) -> dict[str, int]:
    """The id of the newest stored event of each channel (0 for none), in one query."""
    found = dict(EventCounter.objects.filter(name__in=channels).values_list("name", "value"))
    return {channel: found.get(channel, 0) for channel in channels}


# A replay is bounded per channel in events and in bytes: a gap larger than either gets
# `stream-reset` (the page reloads that part) instead of being read into memory.
REPLAY_MAX_BYTES = 1024 * 1024
REPLAY_PAGE = 100  # events read from the database at a time while a replay is written


class OctetLength(Func):
    """The size of a text in bytes, as stored."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra)


def plan_replay(
    known: dict[str, int], limit: int, max_bytes: int = REPLAY_MAX_BYTES
) -> dict[str, tuple[int, bool]]:
    """For each channel, what a replay after its known id holds: (last id to replay, reset).

    `reset` is true when the events asked for are no longer all kept (trimmed, or an id this
    database never issued) or are too many (`limit` events or more, or more than `max_bytes`):
    the reader should reload rather than replay, and resume from the returned id. Nothing
    is read but counts and sizes, at most `limit` rows' worth per channel.
    """
    current = current_ids(list(known))
    out = {}
    for channel, last_id in known.items():
        last_id, upto = int(last_id), current[channel]
        if last_id == upto:
            out[channel] = (upto, False)
            continue
        if last_id > upto or not StoredEvent.objects.filter(channel=channel, eid=last_id).exists():
            out[channel] = (upto, True)
            continue
        gap = StoredEvent.objects.filter(channel=channel, eid__gt=last_id, eid__lte=upto).order_by("eid")
        found = gap[:limit].aggregate(count=Count("eid"), size=Sum(OctetLength("data")))
        too_big = found["count"] >= limit or (found["size"] or 0) > max_bytes
        out[channel] = (upto, too_big)
    return out


def read_page(channel: str, after: int, upto: int, size: int = REPLAY_PAGE) -> list[Event]:
    """Up to `size` stored events of `channel` with ids in (after, upto], oldest first."""
    rows = StoredEvent.objects.filter(channel=channel, eid__gt=after, eid__lte=upto).order_by("eid")
    return [
        Event(channel, row.type, json.loads(row.data), id=row.eid)
        for row in rows.only("type", "data", "eid")[:size]
    ]


def read_since(
    known: dict[str, int], limit: int, max_bytes: int = REPLAY_MAX_BYTES
) -> dict[str, tuple[list, int, bool]]:
    """For each channel, the stored events after its known id: (events, current id, reset).

    `reset` as for `plan_replay`. This holds every channel's events at once: a stream writes
    its replay page by page instead (`plan_replay`, `read_page`).
    """
    out = {}
    for channel, (upto, reset) in plan_replay(known, limit, max_bytes).items():
        if reset:
            out[channel] = ([], upto, True)
            continue
        events, after = [], int(known[channel])
        while page := read_page(channel, after, upto):
            events.extend(page)
            after = page[-1].id
        out[channel] = (events, events[-1].id if events else int(known[channel]), False)
    return out
