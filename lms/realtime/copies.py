"""Stored copies of what a page shows, kept in step with the objects they show.

A stored event is a rendered fragment that pages replay for a day. When the object it shows
changes (a message edited or deleted, a question withdrawn), the copies must change with it,
or a replay from `:0` shows what the page no longer does. So a stored event may name what it
shows when it is published:

    publish_fragment_on_commit(name, "message_created", "chat/room.html#message", context,
                               source=key("chat_message", reply.pk),
                               shows=[key("chat_message", quoted.pk)])

and the app registers how an event is rendered again from its source, as it is now:

    register_source("chat_message", render)   # render(pk, channel, event) -> str | None

Then an action, in its own transaction, after saving, says what changed:

    rewrite_stored(key("chat_message", 12))

and every stored event that shows it is rendered again from its source (or removed, when the
renderer returns None): the message's own events, replies quoting it, previews of it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

Renderer = Callable[[int, str, str], "str | None"]

_renderers: dict[str, Renderer] = {}


def key(kind: str, pk: int) -> str:
    """The name of one object whose copies are tracked: "chat_message-12"."""
    return f"{kind}-{int(pk)}"


def register_source(kind: str, render: Renderer) -> None:
    """Let `render(pk, channel, event)` render again an event stored from `key(kind, pk)`.

    It returns the event's data as the page should see it now, or None to remove the event.
    """
    _renderers[kind] = render


def remember(channel: str, eid: int, source: str, shows: Iterable[str] = ()) -> None:
    """Record that the stored event `(channel, eid)` was rendered from `source` and shows
    `shows` too. Called by `lms.realtime.publish`, in the transaction that stores the event."""
    from lms.realtime.models import StoredCopy

    keys = dict.fromkeys([source, *shows])
    StoredCopy.objects.bulk_create(
        [StoredCopy(channel=channel, eid=eid, key=shown, source=source) for shown in keys]
    )


def rewrite_stored(*keys: str) -> int:
    """Render again every stored event that shows one of `keys`; returns how many changed.

    Call it in the transaction that changes the object, after the change: the copies change
    with it or not at all. Each (source, channel, event type) is rendered once.
    """
    from django_eventstream.models import Event as StoredEvent

    from lms.realtime.models import StoredCopy

    copies = set(StoredCopy.objects.filter(key__in=keys).values_list("channel", "eid", "source"))
    if not copies:
        return 0
    by_channel: dict[str, dict[int, str]] = defaultdict(dict)
    for channel, eid, source in copies:
        by_channel[channel][eid] = source
    rendered: dict[tuple[str, str, str], str | None] = {}
    to_write: dict[str | None, list[int]] = defaultdict(list)
    with transaction.atomic():
        for channel, sources in by_channel.items():
            rows = StoredEvent.objects.filter(channel=channel, eid__in=list(sources)).values_list(
                "pk", "eid", "type"
            )
            for pk, eid, event_type in rows:
                source = sources[eid]
                slot = (source, channel, event_type)
                if slot not in rendered:
                    rendered[slot] = _render(source, channel, event_type)
                to_write[rendered[slot]].append(pk)
        for data, pks in to_write.items():
            events = StoredEvent.objects.filter(pk__in=pks)
            if data is None:
                events.delete()
            else:
                events.update(data=json.dumps(data, cls=DjangoJSONEncoder))
    return sum(len(pks) for pks in to_write.values())


def _render(source: str, channel: str, event_type: str) -> str | None:
    kind, _, pk = source.rpartition("-")
    render = _renderers.get(kind)
    if render is None:
        raise LookupError(f"No renderer registered for stored events of {kind!r}.")
    return render(int(pk), channel, event_type)


def forget_before(cutoff) -> None:
    """Drop the records of events trimmed from storage (those stored before `cutoff`)."""
    from lms.realtime.models import StoredCopy

    StoredCopy.objects.filter(created__lt=cutoff).delete()
