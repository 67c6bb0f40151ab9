"""The one small set of date and time formats, written the same by the server (pages, in the
reader's time zone) and by `static/lms/app.js` (`localTimes`, for pushed fragments and pages
left open past midnight).

- "time": 20:42
- "date": today · yesterday · tomorrow · Monday (within six days) · Dec 1 · Dec 1, 2025
- "short": the time today, else the date (lists of conversations)
- "datetime": the date with the time: "today 20:42", "Monday 20:42", "Dec 1, 20:42",
  "Dec 1, 2025, 20:42"
- the title (on hover): "Monday, Dec 1, 2026, 20:42"

A pushed fragment has no reader: it carries the time in UTC, absolute and marked "UTC", until
the page's script writes it in the reader's zone.
"""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.translation import gettext as _, pgettext

STYLES = ("time", "short", "date", "datetime")


def _day_word(day, today) -> str:
    delta = (day - today).days
    if delta == 0:
        return pgettext("day", "today")
    if delta == -1:
        return pgettext("day", "yesterday")
    if delta == 1:
        return pgettext("day", "tomorrow")
    if abs(delta) < 7:
        return date_format(day, "l")
    return ""


def _absolute_date(value, today) -> str:
    return date_format(value, "M j" if value.year == today.year else "M j, Y")


def format_when(value: datetime, style: str = "datetime", *, tz=None, now: datetime | None = None) -> str:
    """`value` in `tz` (the active zone by default) in one of STYLES, relative to `now`."""
    tz = tz or timezone.get_current_timezone()
    local = timezone.localtime(value, tz)
    today = timezone.localtime(now or timezone.now(), tz).date()
    clock = date_format(local, "H:i")
    if style == "time":
        return clock
    word = _day_word(local.date(), today)
    if style == "short" and local.date() == today:
        return clock
    if style in ("date", "short"):
        return word or _absolute_date(local, today)
    if word:
        return _("%(day)s %(time)s") % {"day": word, "time": clock}
    return _("%(date)s, %(time)s") % {"date": _absolute_date(local, today), "time": clock}


def format_full(value: datetime, *, tz=None) -> str:
    local = timezone.localtime(value, tz or timezone.get_current_timezone())
    return date_format(local, "l, M j, Y, H:i")


def format_neutral(value: datetime, style: str = "datetime") -> str:
    """For a fragment pushed to many readers: absolute, in UTC, and saying so."""
    utc = timezone.localtime(value, UTC)
    if style == "time":
        return date_format(utc, "H:i") + " UTC"
    if style == "short":
        style = "datetime"
    return date_format(utc, "M j, Y" if style == "date" else "M j, Y, H:i") + " UTC"

