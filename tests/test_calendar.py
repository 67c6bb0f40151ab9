"""The livestream calendar feed (a secret URL, no login) and the profile page that manages it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from icalendar import Calendar

from lms.accounts.actions import do_regenerate_calendar_token, do_revoke_calendar_token
from lms.livestream.calendar import calendar_for
from lms.livestream.models import Recording
from tests.factories import CourseFactory, StreamFactory, UserFactory

PROFILE_URL = "/accounts/profile/"
HOST = "http://testserver"


@pytest.fixture(autouse=True)
def utc_afterwards():
    """Requests activate the user's time zone for the current thread: leave none behind."""
    yield
    timezone.deactivate()


@pytest.fixture
def token(member):
    return do_regenerate_calendar_token(member)


@pytest.fixture
def anonymous():
    """A client with no cookies at all, as a calendar app is."""
    return Client()


def feed_url(token: str) -> str:
    return f"/livestream/calendar/{token}.ics"


def events_of(response) -> dict[str, object]:
    """The feed's VEVENTs by UID."""
    calendar = Calendar.from_ical(response.content)
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def uid(stream) -> str:
    return f"stream-{stream.pk}@testserver"


def at(hours: float) -> datetime:
    return timezone.now().replace(microsecond=0) + timedelta(hours=hours)


def recording_page(stream) -> str:
    """The recording page, or the stream page while the recording page isn't there yet."""
    try:
        return HOST + reverse("livestream:recording", args=[stream.pk])
    except NoReverseMatch:
        return HOST + reverse("livestream:detail", args=[stream.pk])


# The feed


def test_calendar_feed_lists_exactly_the_members_course_streams(anonymous, token, course):
    mine = [StreamFactory(course=course), StreamFactory(course=course, ended=True)]
    other = StreamFactory(course=CourseFactory())
    events = events_of(anonymous.get(feed_url(token)))
    assert set(events) == {uid(stream) for stream in mine}
    assert uid(other) not in events


def test_calendar_feed_includes_streams_of_courses_the_user_teaches(anonymous, instructor, course):
    stream = StreamFactory(course=course)
    events = events_of(anonymous.get(feed_url(do_regenerate_calendar_token(instructor))))
    assert set(events) == {uid(stream)}


def test_calendar_feed_lists_every_course_for_staff(anonymous, db):
    staff = UserFactory(username="sam", is_staff=True)
    streams = [StreamFactory(), StreamFactory()]
    events = events_of(anonymous.get(feed_url(do_regenerate_calendar_token(staff))))
    assert set(events) == {uid(stream) for stream in streams}


def test_calendar_feed_is_an_icalendar_file_with_its_headers(anonymous, token, course):
    response = anonymous.get(feed_url(token))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == 'inline; filename="course-live.ics"'
    assert response["Cache-Control"] == "private, max-age=300"


def test_calendar_feed_names_the_calendar_and_its_refresh_interval(anonymous, token, member):
    calendar = Calendar.from_ical(anonymous.get(feed_url(token)).content)
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert calendar["X-WR-CALNAME"] == f"Course live: {member.name}"
    assert calendar["REFRESH-INTERVAL"].dt == timedelta(hours=1)
    assert calendar["REFRESH-INTERVAL"].params["VALUE"] == "DURATION"
    assert calendar["X-PUBLISHED-TTL"] == "PT1H"


def test_calendar_feed_event_has_summary_times_in_utc_url_and_location(anonymous, token, course):
    stream = StreamFactory(
        course=course, title="Cell division", starts_at=at(24), ends_at=at(25), description="Bring a microscope."
    )
    event = events_of(anonymous.get(feed_url(token)))[uid(stream)]
    stream_page = HOST + reverse("livestream:detail", args=[stream.pk])
    assert event["SUMMARY"] == "BIO101: Cell division"
    assert event["DTSTART"].dt == stream.starts_at
    assert event["DTEND"].dt == stream.ends_at
    assert event["DTSTART"].dt.utcoffset() == event["DTEND"].dt.utcoffset() == timedelta(0)
    assert event["DTSTART"].to_ical().endswith(b"Z")
    assert event["URL"] == stream_page
    assert event["DESCRIPTION"].split("\n\n") == ["Bring a microscope.", stream_page]
    assert event["LOCATION"] == "Course live (online)"
    assert event["STATUS"] == "CONFIRMED"
    assert event["DTSTAMP"].dt.tzinfo is not None


def test_calendar_feed_times_are_utc_whatever_the_users_time_zone(anonymous, member, course):
    member.timezone = "Asia/Tokyo"
    member.save()
    starts_at, ends_at = datetime(2031, 3, 1, 9, 30, tzinfo=UTC), datetime(2031, 3, 1, 11, tzinfo=UTC)
    stream = StreamFactory(course=course, starts_at=starts_at, ends_at=ends_at)
    event = events_of(anonymous.get(feed_url(do_regenerate_calendar_token(member))))[uid(stream)]
    assert event["DTSTART"].to_ical() == b"20310301T093000Z"
    assert event["DTEND"].to_ical() == b"20310301T110000Z"


def test_calendar_feed_uses_when_an_ended_stream_actually_ran(anonymous, token, course):
    stream = StreamFactory(
        course=course, state="ended", starts_at=at(-5), ends_at=at(-4), started_at=at(-4.9), ended_at=at(-3.5)
    )
    event = events_of(anonymous.get(feed_url(token)))[uid(stream)]
    assert event["DTSTART"].dt == stream.started_at
    assert event["DTEND"].dt == stream.ended_at


def test_calendar_feed_keeps_the_schedule_of_a_stream_not_yet_ended(anonymous, token, course):
    stream = StreamFactory(course=course, live=True, starts_at=at(-1), ends_at=at(1), started_at=at(-0.5))
    event = events_of(anonymous.get(feed_url(token)))[uid(stream)]
    assert event["DTSTART"].dt == stream.starts_at
    assert event["DTEND"].dt == stream.ends_at


def test_calendar_feed_leaves_out_streams_older_than_180_days(anonymous, token, course):
    old = StreamFactory(course=course, state="ended", starts_at=at(-24 * 200), ends_at=at(-24 * 200 + 1))
    recent = StreamFactory(course=course, state="ended", starts_at=at(-24 * 170), ends_at=at(-24 * 170 + 1))
    future = StreamFactory(course=course, starts_at=at(24 * 400), ends_at=at(24 * 400 + 1))
    events = events_of(anonymous.get(feed_url(token)))
    assert set(events) == {uid(recent), uid(future)}
    assert uid(old) not in events


def test_calendar_feed_links_a_past_streams_recording(anonymous, token, course):
    stream = StreamFactory(course=course, ended=True, description="Lab session.")
    Recording.objects.create(stream=stream, url="https://videos.example/lab.mp4")
    event = events_of(anonymous.get(feed_url(token)))[uid(stream)]
    page = recording_page(stream)
    stream_page = HOST + reverse("livestream:detail", args=[stream.pk])
    assert event["URL"] == page
    recording_link = page if page != stream_page else "https://videos.example/lab.mp4"
    assert event["DESCRIPTION"].split("\n\n") == ["Lab session.", stream_page, f"Recording: {recording_link}"]


def test_calendar_feed_has_no_recording_line_without_a_recording(anonymous, token, course):
    stream = StreamFactory(course=course, ended=True)
    event = events_of(anonymous.get(feed_url(token)))[uid(stream)]
    assert "Recording:" not in event["DESCRIPTION"]
    assert event["URL"] == HOST + reverse("livestream:detail", args=[stream.pk])


def test_calendar_feed_escapes_text_that_looks_like_icalendar(anonymous, token, course):
    title = "Q&A; part 1, with\nBEGIN:VEVENT"
    stream = StreamFactory(course=course, title=title)
    events = events_of(anonymous.get(feed_url(token)))
    assert list(events) == [uid(stream)]
    assert events[uid(stream)]["SUMMARY"] == f"BIO101: {title}"


def test_calendar_for_returns_bytes_that_parse(rf, member, course):
    stream = StreamFactory(course=course)
    data = calendar_for(member, rf.get("/"))
    assert isinstance(data, bytes)
    assert [str(event["UID"]) for event in Calendar.from_ical(data).walk("VEVENT")] == [uid(stream)]


# The secret


def test_calendar_feed_needs_no_login_cookie(anonymous, token, course):
    StreamFactory(course=course)
    response = anonymous.get(feed_url(token))
    assert response.status_code == 200
    assert not anonymous.cookies.get("sessionid")
    assert len(events_of(response)) == 1


@pytest.mark.parametrize("path", ["/livestream/calendar/.ics", "/livestream/calendar/"])
def test_calendar_feed_without_a_token_is_404(anonymous, token, path):
    assert anonymous.get(path).status_code == 404


def test_calendar_feed_with_a_wrong_token_is_404(anonymous, token):
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert anonymous.get(feed_url(wrong)).status_code == 404


def test_calendar_feed_with_a_differently_cased_token_is_404(anonymous, token):
    assert token.swapcase() != token
    assert anonymous.get(feed_url(token.swapcase())).status_code == 404


def test_calendar_feed_with_a_short_token_is_404_even_if_stored(anonymous, member):
    member.calendar_token = "short-token-123"
    member.save()
    assert anonymous.get(feed_url("short-token-123")).status_code == 404


def test_calendar_feed_with_a_revoked_token_is_404(anonymous, member, token):
    do_revoke_calendar_token(member)
    assert anonymous.get(feed_url(token)).status_code == 404


def test_calendar_feed_regenerated_token_works_and_the_old_one_does_not(anonymous, member, token):
    new = do_regenerate_calendar_token(member)
    assert new != token
    assert anonymous.get(feed_url(new)).status_code == 200
    assert anonymous.get(feed_url(token)).status_code == 404


def test_calendar_feed_of_a_deactivated_user_is_404(anonymous, member, token):
    member.is_active = False
    member.save()
    assert anonymous.get(feed_url(token)).status_code == 404


def test_calendar_feed_refuses_post(anonymous, token):
    assert anonymous.post(feed_url(token)).status_code == 405


def test_regenerate_calendar_token_makes_a_long_url_safe_secret(member):
    token = do_regenerate_calendar_token(member)
    member.refresh_from_db()
    assert member.calendar_token == token
    assert len(token) >= 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_revoke_calendar_token_empties_it(member, token):
    do_revoke_calendar_token(member)
    member.refresh_from_db()
    assert member.calendar_token == ""


# The profile page


def test_profile_redirects_anonymous_visitors_to_login(client):
    response = client.get(PROFILE_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/accounts/profile/")


def test_profile_shows_the_form_with_the_users_values(client, member):
    member.display_name = "Ana S."
    member.timezone = "Europe/Lisbon"
    member.save()
    client.force_login(member)
    response = client.get(PROFILE_URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'for="id_display_name"' in html
    assert 'value="Ana S."' in html
    assert '<option value="Europe/Lisbon" selected>' in html
    assert 'for="id_send_read_receipts"' in html
    assert 'id="id_send_read_receipts" checked' in html
    assert "no-store" in response["Cache-Control"]


def test_profile_is_linked_from_the_nav(client, member):
    member.display_name = "Ana S."
    member.save()
    client.force_login(member)
    home, profile = (client.get(url).content.decode() for url in ("/", PROFILE_URL))
    assert f'<a href="{PROFILE_URL}"><bdi>Ana S.</bdi></a>' in home
    assert f'<a href="{PROFILE_URL}" aria-current="page"><bdi>Ana S.</bdi></a>' in profile


def test_profile_post_saves_name_zone_and_receipts(client, member):
    client.force_login(member)
    response = client.post(PROFILE_URL, {"display_name": "  Ana Souza ", "timezone": "America/Sao_Paulo"})
    member.refresh_from_db()
    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    saved = (member.display_name, member.timezone, member.send_read_receipts)
    assert saved == ("Ana Souza", "America/Sao_Paulo", False)
    assert "Your profile is saved." in client.get(PROFILE_URL).content.decode()


def test_profile_post_turns_receipts_back_on(client, member):
    member.send_read_receipts = False
    member.save()
    client.force_login(member)
    client.post(PROFILE_URL, {"display_name": "Ana", "timezone": "UTC", "send_read_receipts": "on"})
    member.refresh_from_db()
    assert member.send_read_receipts is True


def test_profile_invalid_time_zone_shows_an_error_and_keeps_the_typed_name(client, member):
    member.display_name = "Ana"
    member.save()
    client.force_login(member)
    response = client.post(PROFILE_URL, {"display_name": "Ana Typed", "timezone": "Mars/Olympus_Mons"})
    html = response.content.decode()
    member.refresh_from_db()
    assert response.status_code == 200
    assert 'class="form-error-text" role="alert"' in html
    assert "Mars/Olympus_Mons is not one of the available choices" in html
    assert 'value="Ana Typed"' in html
    assert (member.display_name, member.timezone) == ("Ana", "UTC")
    # The nav still shows the saved name, not the rejected one.
    assert "<bdi>Ana</bdi>" in html


def test_profile_shows_no_feed_link_until_one_is_made(client, member):
    client.force_login(member)
    html = client.get(PROFILE_URL).content.decode()
    assert "Create feed link" in html
    assert "/livestream/calendar/" not in html
    assert "Turn off the feed" not in html


def test_profile_shows_the_feed_url_when_there_is_a_token(client, member, token):
    client.force_login(member)
    html = client.get(PROFILE_URL).content.decode()
    assert f'value="{HOST}/livestream/calendar/{token}.ics"' in html
    assert "Copy this link" in html
    assert "New link (the old one stops working)" in html
    assert "Turn off the feed" in html


def test_profile_create_feed_button_makes_a_working_token(client, anonymous, member):
    client.force_login(member)
    response = client.post(PROFILE_URL, {"calendar": "new"})
    member.refresh_from_db()
    assert response.status_code == 302
    assert member.calendar_token
    assert anonymous.get(feed_url(member.calendar_token)).status_code == 200


def test_profile_new_link_button_replaces_the_token(client, anonymous, member, token):
    client.force_login(member)
    client.post(PROFILE_URL, {"calendar": "new"})
    member.refresh_from_db()
    assert member.calendar_token not in ("", token)
    assert anonymous.get(feed_url(token)).status_code == 404
    assert anonymous.get(feed_url(member.calendar_token)).status_code == 200


def test_profile_turn_off_button_revokes_the_token(client, anonymous, member, token):
    client.force_login(member)
    response = client.post(PROFILE_URL, {"calendar": "off"})
    member.refresh_from_db()
    assert response.status_code == 302
    assert member.calendar_token == ""
    assert anonymous.get(feed_url(token)).status_code == 404


def test_profile_feed_buttons_leave_the_profile_alone(client, member, token):
    member.display_name = "Ana"
    member.save()
    client.force_login(member)
    client.post(PROFILE_URL, {"calendar": "off"})
    member.refresh_from_db()
    assert member.display_name == "Ana"


@pytest.mark.parametrize("action", ["new", "off"])
def test_profile_get_with_a_feed_action_changes_nothing(client, member, token, action):
    client.force_login(member)
    response = client.get(PROFILE_URL, {"calendar": action})
    member.refresh_from_db()
    assert response.status_code == 200
    assert member.calendar_token == token


def test_profile_feed_buttons_need_the_csrf_token(member, token):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    assert client.post(PROFILE_URL, {"calendar": "off"}).status_code == 403
    member.refresh_from_db()
    assert member.calendar_token == token
