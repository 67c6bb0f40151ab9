"""The per-process hub: order, duplicates and slow subscribers, without a server."""

import asyncio

import pytest

from lms.realtime.hub import MAX_QUEUED, Hub, Subscriber, encode_event


def collect(subscriber: Subscriber) -> list[tuple[int | None, str]]:
    out = [(item.eid, item.body.decode()) for item in subscriber.items]
    subscriber.items.clear()
    return out


def hub_with(*channels):
    async def make():
        hub = Hub(asyncio.get_running_loop())
        subscriber = Subscriber(1, list(channels))
        hub.add(subscriber)
        return hub, subscriber

    return make


def test_encode_event_splits_every_kind_of_line_break():
    assert encode_event("x\ny", "a\r\nb\rc\nd") == "event: xy\ndata: a\ndata: b\ndata: c\ndata: d\n"


def test_events_are_delivered_once_each_in_id_order():
    async def scenario():
        hub, subscriber = await hub_with("room-1")()
        hub.note_position("room-1", 0)
        for eid in (1, 3, 2, 2, 1, 4):
            hub.deliver("room-1", "m", str(eid), eid)
        return [eid for eid, _ in collect(subscriber)]

    assert asyncio.run(scenario()) == [1, 2, 3, 4]


def test_unstored_events_pass_straight_through():
    async def scenario():
        hub, subscriber = await hub_with("room-1")()
        hub.deliver("room-1", "typing", "<p>Ana is typing…</p>", None)
        return collect(subscriber)

    assert asyncio.run(scenario()) == [(None, "event: typing\ndata: <p>Ana is typing…</p>\n")]


def test_an_event_is_encoded_once_for_every_stream_of_its_channel():
    async def scenario():
        hub = Hub(asyncio.get_running_loop())
        streams = [Subscriber(n, ["room-1"]) for n in range(3)]
        for subscriber in streams:
            hub.add(subscriber)
        hub.note_position("room-1", 0)
        hub.deliver("room-1", "m", "<p>hi</p>", 1)
        return [subscriber.items[0] for subscriber in streams]

    first, *others = asyncio.run(scenario())
    assert all(item is first for item in others)
    assert first.whole == b"event: m\ndata: <p>hi</p>\nid: room-1:1\n\n"


def test_events_for_channels_nobody_here_reads_are_dropped():
    async def scenario():
        hub, subscriber = await hub_with("room-1")()
        hub.deliver("room-2", "m", "x", 1)
        return collect(subscriber), hub.channel_last

    assert asyncio.run(scenario()) == ([], {})


def test_a_subscriber_that_falls_behind_is_told_to_catch_up():
    async def scenario():
        hub, subscriber = await hub_with("room-1")()
        for eid in range(1, MAX_QUEUED + 2):
            hub.deliver("room-1", "m", "x", eid)
        return subscriber.overflow, len(subscriber.items)

    assert asyncio.run(scenario()) == (True, 0)


@pytest.mark.django_db(transaction=True)
def test_a_gap_is_filled_from_storage_when_the_missing_event_never_comes():
    from lms.realtime import publish

    for n in range(1, 4):
        publish("course-7", "m", f"stored {n}")

    async def scenario():
        hub, subscriber = await hub_with("course-7")()
        hub.note_position("course-7", 1)
        hub.deliver("course-7", "m", "stored 3", 3)  # 2 was lost on its way
        assert collect(subscriber) == []
        await asyncio.sleep(0.6)
        return [body for _, body in collect(subscriber)]

    assert asyncio.run(scenario()) == [encode_event("m", "stored 2"), encode_event("m", "stored 3")]


def test_removing_the_last_subscriber_forgets_the_channel():
    async def scenario():
        hub, subscriber = await hub_with("room-1", "user-1")()
        hub.note_position("room-1", 5)
        hub.remove(subscriber)
        return hub.by_channel, hub.by_user, hub.channel_last

    assert asyncio.run(scenario()) == ({}, {}, {})
