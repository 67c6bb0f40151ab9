"""Every write that concerns people themselves."""

import secrets
import uuid

from django.db import transaction
from django.utils import timezone

from lms.accounts.models import User
from lms.realtime import channel, present_users, publish_fragment_on_commit
from lms.realtime.coalesce import coalesce


def do_update_profile(user: User, *, display_name: str, time_zone: str, send_read_receipts: bool) -> None:
    """Save what people choose about themselves (the profile page)."""
    user.display_name = display_name
    user.timezone = time_zone
    user.send_read_receipts = send_read_receipts
    user.save(update_fields=["display_name", "timezone", "send_read_receipts"])


def do_regenerate_calendar_token(user: User) -> str:
    """A new secret for the user's calendar feed URL (256 random bits); the old URL stops working."""
    user.calendar_token = secrets.token_urlsafe(32)
    user.save(update_fields=["calendar_token"])
    return user.calendar_token


def do_revoke_calendar_token(user: User) -> None:
    """Turn the user's calendar feed off: no URL works until a new one is made."""
    user.calendar_token = ""
    user.save(update_fields=["calendar_token"])


@transaction.atomic
def do_announce(user: User, *, text: str) -> None:
    """Push a one-line announcement to every open page of `user` (shown on their home page)."""
    announcement = {"id": uuid.uuid4().hex, "text": text, "sent": timezone.now()}
    publish_fragment_on_commit(
        channel("user", user.pk), "announcement", "home.html#announcement", {"announcement": announcement}
    )


def announce_online(user_id: int, user_ids: set[int]) -> None:
    """Called by lms.realtime (at most once a second) when a user opens their first page or
    closes their last: tell the pages of the courses they are in, where their dots are.

    The changes of everyone in a course are pushed together, at most every half second: at the
    start of a lecture hundreds arrive at once, and each course page gets one event for them
    all, not one per person.
    """
    from lms.courses.models import Course, Enrolment

    taught = Course.instructors.through.objects.filter(user_id=user_id).values_list("course_id", flat=True)
    enrolled = Enrolment.objects.filter(user_id=user_id).values_list("course_id", flat=True)
    for course_id in {*taught, *enrolled}:
        coalesce("online", course_id, {user_id: bool(user_ids)})


def announce_course_online(course_id: int, changes: dict[int, bool]) -> None:
    """Push who came online or went offline in a course since the last push."""
    signals = [{"user": user_id, "online": online} for user_id, online in sorted(changes.items())]
    publish_fragment_on_commit(
        channel("course", course_id), "online_changed", "base.html#presence-signals", {"signals": signals},
        stored=False,
    )


def online_ids(user_ids) -> set[int]:
    """Which of these users have a page open now (for the first paint of online dots)."""
    names = {channel("user", uid): uid for uid in user_ids}
    return {names[name] for name, users in present_users(list(names)).items() if users}
