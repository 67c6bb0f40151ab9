"""Reading django-eventstream's event storage (the database), for replays and catch-up."""

from django_eventstream.models import EventCounter
from django_eventstream.storage import EventDoesNotExist
from django_eventstream.utils import get_storage


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
