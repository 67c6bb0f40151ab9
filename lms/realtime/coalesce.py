"""Work done at most once per object and period, however often it is asked for.

A reaction to many small changes (people coming online in a course, readers moving their read
markers in a room) is one push for all of them, not one per change:

    register_coalesced("receipts", delay=2.0, run=announce_receipts, merge=widen_range)
    coalesce("receipts", room.pk, {"lo": 10, "hi": 12})

The first `coalesce` for an object starts a timer of `delay` seconds; later calls before it
fires merge their items into the pending ones (`merge(pending, items)`, by default a dict
update). When the timer fires, `run(pk, items)` runs once, in a worker thread of this process's
hub, with its database connection given back. Without a running hub (tests, commands) it runs
at once. Pending work lives in the process that asked for it: with several worker processes,
each sends at most one push per object and period.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import OperationalError

logger = logging.getLogger(__name__)

Items = dict
Run = Callable[[int, Items], None]
Merge = Callable[[Items, Items], None]


@dataclass(frozen=True)
class Kind:
    delay: float
    run: Run
    merge: Merge


_kinds: dict[str, Kind] = {}
_pending: dict[tuple[str, int], tuple[object, Items]] = {}  # (the hub that will run it, items)
_lock = threading.Lock()


def register_coalesced(kind: str, *, delay: float, run: Run, merge: Merge | None = None) -> None:
    _kinds[kind] = Kind(delay, run, merge or (lambda pending, items: pending.update(items)))


def coalesce(kind: str, pk: int, items: Items | None = None) -> None:
    """Ask for `kind`'s work on object `pk` within its delay, merged with what is pending."""
    from lms.realtime.hub import current_hub

    spec = _kinds[kind]
    hub = current_hub()
    if hub is None:
        spec.run(pk, dict(items or {}))
        return
    key = (kind, pk)
    with _lock:
        waiting = _pending.get(key)
        if waiting is not None and waiting[0] is hub:
            spec.merge(waiting[1], items or {})
            return
        _pending[key] = (hub, dict(items or {}))  # (a stopped hub's leftovers are dropped)
    hub.loop.call_soon_threadsafe(hub.loop.call_later, spec.delay, _fire, hub, key)


def _fire(hub, key: tuple[str, int]) -> None:
    hub.loop.create_task(_run(hub, key))


async def _run(hub, key: tuple[str, int]) -> None:
    from lms.realtime.hub import run_db

    with _lock:
        waiting = _pending.get(key)
        if waiting is None or waiting[0] is not hub:
            return
        del _pending[key]
    items = waiting[1]
    kind, pk = key
    try:
        await run_db(_kinds[kind].run, pk, items)
    except OperationalError as error:  # the database away or a deadlock: a transient fault
        logger.warning("Coalesced %s for %s failed (%s).", kind, pk, error)
    except Exception:
        logger.exception("Coalesced %s for %s failed.", kind, pk)
