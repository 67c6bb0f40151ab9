"""The one set of date and time formats, on pages (the reader's zone) and in pushed fragments."""

import zoneinfo
from datetime import UTC, datetime

from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from lms.accounts.dates import format_full, format_neutral, format_when

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)  # Friday 22:00 in Paris


def at(*args):
    return datetime(*args, tzinfo=UTC)


def test_times_are_relative_where_it_helps_and_in_the_readers_zone():
    def fmt(value, style="datetime"):
        return format_when(value, style, tz=PARIS, now=NOW)

    assert fmt(at(2026, 12, 4, 19, 42)) == "today 20:42"
    assert fmt(at(2026, 12, 3, 19, 42)) == "yesterday 20:42"
    assert fmt(at(2026, 12, 5, 8, 0)) == "tomorrow 09:00"
    assert fmt(at(2026, 12, 1, 8, 0)) == "Tuesday 09:00"
    assert fmt(at(2026, 11, 20, 8, 0)) == "Nov 20, 09:00"
    assert fmt(at(2025, 11, 20, 8, 0)) == "Nov 20, 2025, 09:00"
    # 23:30 UTC on the 3rd is already the 4th in Paris.
    assert fmt(at(2026, 12, 3, 23, 30)) == "today 00:30"
    assert fmt(at(2026, 12, 4, 19, 42), "time") == "20:42"
    assert fmt(at(2026, 12, 4, 19, 42), "short") == "20:42"
    assert fmt(at(2026, 12, 3, 19, 42), "short") == "yesterday"
    assert fmt(at(2026, 11, 20, 8, 0), "date") == "Nov 20"
    assert format_full(at(2026, 12, 1, 20, 22), tz=PARIS) == "Tuesday, Dec 1, 2026, 21:22"


def test_a_pushed_fragment_has_no_reader_so_says_utc():
    assert format_neutral(at(2026, 12, 1, 20, 22)) == "Dec 1, 2026, 20:22 UTC"
    assert format_neutral(at(2026, 12, 1, 20, 22), "time") == "20:22 UTC"


def test_the_when_tag_writes_for_the_page_or_neutral():
    template = Template('{% load dates %}{% when value "datetime" %}')
    value = timezone.now().replace(hour=12, minute=5)
    with timezone.override(PARIS):
        page = template.render(Context({"value": value, "request": RequestFactory().get("/")}))
        pushed = template.render(Context({"value": value}))
    assert page.startswith(f'<time datetime="{value.isoformat()}" data-local="datetime" title="')
    assert ">today 13:05</time>" in page
    assert pushed.endswith(">" + format_neutral(value) + "</time>")
