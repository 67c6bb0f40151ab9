"""Channel names and who may read them.

`lms/realtime` knows no feature: each app registers its channel family and the check that
says who may read one, in its `AppConfig.ready()`:

    register_channel("room", lambda user, pk: can_read_room(user, pk))

A channel is named `<kind>-<pk>` ("room-12"). Unknown kinds and malformed names are refused.
"""

import re
from collections.abc import Callable

from django_eventstream.channelmanager import ChannelManagerBase

ChannelCheck = Callable[[object, int], bool]
OccupancyCallback = Callable[[int, int], None]
PresenceCallback = Callable[[int, set[int]], None]

_checks: dict[str, ChannelCheck] = {}
_occupancy: dict[str, OccupancyCallback] = {}
_presence: dict[str, PresenceCallback] = {}
_NAME = re.compile(r"\A([a-z][a-z_]*)-([1-9][0-9]{0,17})\Z")


def register_channel(
    kind: str,
    check: ChannelCheck,
    *,
    on_occupancy: OccupancyCallback | None = None,
    on_presence: PresenceCallback | None = None,
) -> None:
    """Let `check(user, pk)` decide who may read the channels `<kind>-<pk>`.

    With `on_occupancy`, `on_occupancy(pk, count)` is called with the number of open streams
    on a channel, across every process, at most once a second per channel while it changes
    (in one process only, in a worker thread): viewer counts without a write per viewer.
    With `on_presence`, `on_presence(pk, user_ids)` likewise gets who has a stream open there.
    """
    if not re.fullmatch(r"[a-z][a-z_]*", kind):
        raise ValueError(f"Channel kind {kind!r} must be lowercase letters and underscores.")
    _checks[kind] = check
    if on_occupancy is not None:
        _occupancy[kind] = on_occupancy
    if on_presence is not None:
        _presence[kind] = on_presence


def occupancy_callback(name: str) -> OccupancyCallback | None:
    kind, _, _ = name.partition("-")
    return _occupancy.get(kind)


def presence_callback(name: str) -> PresenceCallback | None:
    kind, _, _ = name.partition("-")
    return _presence.get(kind)


def is_watched(name: str) -> bool:
    """Whether this channel's streams are counted (viewers) or named (presence)."""
    kind, _, _ = name.partition("-")
    return kind in _occupancy or kind in _presence


def channel(kind: str, pk: int) -> str:
    return f"{kind}-{int(pk)}"


def is_well_formed(name: str) -> bool:
    """Whether `name` is spelled like a channel name at all (its kind may still be unknown)."""
    return _NAME.match(name) is not None


def parse_channel(name: str) -> tuple[str, int] | None:
    match = _NAME.match(name)
    if not match or match.group(1) not in _checks:
        return None
    return match.group(1), int(match.group(2))


def can_read_channel(user, name: str) -> bool:
    """Whether `user` (possibly anonymous) may subscribe to channel `name`. Queries the database."""
    parsed = parse_channel(name)
    if parsed is None:
        return False
    kind, pk = parsed
    return bool(_checks[kind](user, pk))


class ChannelManager(ChannelManagerBase):
    """django-eventstream's hook, for its own views and `channel_permission_changed`."""

    def get_channels_for_request(self, request, view_kwargs):
        return set(request.GET.getlist("channel"))

    def can_read_channel(self, user, channel):
        from django.contrib.auth.models import AnonymousUser

        return can_read_channel(user or AnonymousUser(), channel)

    def is_channel_reliable(self, channel):
        return True
