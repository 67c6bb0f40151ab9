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
from django.utils import timezone
from django_eventstream.event import Event
from django_eventstream.models import EventCounter
from django_eventstream.models import Event as StoredEvent
from django_eventstream.storage import EVENT_TIMEOUT, DjangoModelStorage, EventDoesNotExist
from django_eventstream.utils import get_storage

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


def read_since(known: dict[str, int], limit: int) -> dict[str, tuple[list, int, bool]]:
    """For each channel, the stored events after its known id: (events, current id, reset).

    `reset` is true when the events asked for are no longer all kept (trimmed, too many, or
    an id this database never issued): the reader should reload rather than replay.
    """
    storage = get_storage()
    out = {}
    for channel, last_id in known.items():
        try:
            events = storage.get_events(channel, int(last_id), limit=limit)
        except EventDoesNotExist as missing:
            out[channel] = ([], int(missing.current_id), True)
            continue
        if len(events) >= limit:
            out[channel] = ([], storage.get_current_id(channel), True)
            continue
        current = events[-1].id if events else int(last_id)
        out[channel] = (events, current, False)
    return out
