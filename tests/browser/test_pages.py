"""What a person notices on the pages: readable buttons, error pages in the site's layout, the
ended state of a stream in every region, dates in the reader's zone, counts in plural."""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from lms.accounts.actions import do_announce
from lms.livestream.actions import do_create_stream, do_end_stream, do_start_stream
from lms.livestream.models import Recording
from lms.qa.actions import do_answer_question, do_ask_question
from tests.browser.conftest import log_in
from tests.browser.test_livestream import open_as

pytestmark = pytest.mark.django_db(transaction=True)

# WCAG's contrast ratio of the element's text on its own background.
CONTRAST = """el => {
  const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = c => { const v = c.map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
                     return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const style = getComputedStyle(el);
  const a = lum(rgb(style.color)), b = lum(rgb(style.backgroundColor));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def make_stream(course, instructor, title="Cell biology", live=True):
    starts = timezone.now()
    stream = do_create_stream(course, creator=instructor, title=title, starts_at=starts, ends_at=starts + timedelta(hours=1))
    return do_start_stream(stream, actor=instructor) if live else stream


def test_watch_the_recording_is_readable_on_the_ended_stage(app_server, new_page, course, instructor, member):
    stream = do_end_stream(make_stream(course, instructor), actor=instructor)
    Recording.objects.create(stream=stream, url="https://example.org/talk.mp4", added_by=instructor)
    page = open_as(new_page, app_server, member, f"/livestream/{stream.pk}/")
    link = page.get_by_role("link", name="Watch the recording")
    expect(link).to_be_visible()
    assert link.evaluate(CONTRAST) >= 4.5


def test_error_pages_are_in_the_sites_layout_with_a_way_back(app_server, new_page, course, member):
    page = new_page()
    log_in(page, app_server, member.username)
    response = page.goto(app_server.url + "/no/such/page/")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("This page doesn't exist")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    page.get_by_role("link", name="Go to the home page").click()
    page.wait_for_url(app_server.url + "/")
    # 403 and 500 in tests/test_pages.py: Django logs them with a traceback, which would fail
    # a test through an app server.


def test_the_ended_state_reaches_every_region_live_and_after_a_reload(app_server, new_page, course, instructor, member):
    stream = make_stream(course, instructor)
    asked, _ = do_ask_question(stream, author=instructor, text="Is mitosis on the exam?", anonymous=False, client_token=None)
    answered, _ = do_ask_question(stream, author=instructor, text="Where are the slides?", anonymous=False, client_token=None)
    do_answer_question(answered)
    student = open_as(new_page, app_server, member, f"/livestream/{stream.pk}/")
    expect(student.locator("#ask-form")).to_be_visible()
    expect(student.locator("#viewer-count")).to_contain_text("watching")
    expect(student.locator("#question-region .upvote")).to_have_count(1)
    panel = open_as(new_page, app_server, instructor, f"/livestream/{stream.pk}/manage/")

    panel.get_by_role("button", name="End stream").click()
    for reload in (False, True):
        if reload:
            student.reload()
        expect(student.locator("#stage")).to_contain_text("Stream ended", timeout=10_000)
        expect(student.locator("#ask-form")).to_have_count(0)
        expect(student.locator("#viewer-count")).to_have_text(re.compile(r"^Ended · peak \d+ viewers?$"))
        expect(student.locator("#question-region .upvote")).to_have_count(0)
        expect(student.locator("#question-region")).to_contain_text("Questions are closed")
        expect(student.locator("#questions-unanswered")).to_contain_text("Is mitosis on the exam?")
        expect(student.locator("#questions-answered")).to_contain_text("Where are the slides?")
        expect(student.locator("#question-region")).not_to_contain_text("Ask the first")
    assert student.errors == []


def test_times_are_in_the_readers_zone_on_pages_and_in_pushed_fragments(app_server, new_page, course, instructor, member):
    from lms.accounts.dates import format_when

    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    member.timezone = "Asia/Tokyo"
    member.save(update_fields=["timezone"])
    stream = make_stream(course, instructor, live=False)
    # 23:15 UTC, twenty days ahead: 08:15 the next day in Tokyo.
    starts = (timezone.now() + timedelta(days=20)).astimezone(UTC).replace(hour=23, minute=15, second=0, microsecond=0)
    type(stream).objects.filter(pk=stream.pk).update(starts_at=starts, ends_at=starts + timedelta(hours=1))
    page = open_as(new_page, app_server, member, "/livestream/")
    shown = page.locator(f"#stream-card-{stream.pk} time")
    expect(shown).to_have_text(format_when(starts, tz=tokyo))
    assert shown.text_content().endswith(", 08:15")
    assert format_when(starts, tz=tokyo) != format_when(starts, tz=UTC)

    # A pushed fragment is written for no one (UTC); the page writes it in the reader's zone.
    page.goto(app_server.url + "/")
    expect(page.locator("#connection-status")).to_be_hidden()
    sent = timezone.now()
    do_announce(member, text="Your essay was marked.")
    expect(page.locator("#announcements li")).to_contain_text("Your essay was marked.", timeout=10_000)
    expect(page.locator("#announcements time")).not_to_contain_text("UTC")
    text = page.locator("#announcements time").text_content()
    assert text in {format_when(sent + timedelta(seconds=s), "time", tz=tokyo) for s in range(-2, 30)}


def test_a_recording_that_cannot_load_says_so(app_server, new_page, course, instructor, member):
    stream = do_end_stream(make_stream(course, instructor), actor=instructor)
    Recording.objects.create(stream=stream, url="https://videos.example/gone.mp4", added_by=instructor)
    page = new_page()
    page.route("https://videos.example/**", lambda route: route.abort())  # offline, or a dead link
    log_in(page, app_server, member.username)
    page.goto(f"{app_server.url}/livestream/{stream.pk}/recording/")
    notice = page.get_by_role("alert")
    expect(notice).to_contain_text("The video could not be loaded.")
    expect(notice.get_by_role("link", name="try opening it directly")).to_have_attribute("href", "https://videos.example/gone.mp4")


def test_staff_are_labelled_staff_reach_the_admin_and_can_message_people(app_server, new_page, course, member):
    from tests.factories import UserFactory

    UserFactory(username="root", display_name="Site admin", is_staff=True, is_superuser=True)
    page = new_page()
    log_in(page, app_server, "root")
    expect(page.locator(".nav-user .role")).to_have_text("Staff")
    page.goto(app_server.url + "/chat/")
    people = page.locator(".people")
    expect(people).to_contain_text(member.name)
    people.get_by_role("button", name=member.name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(member.name)  # a direct conversation
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin", exact=True).click()
    expect(page).to_have_title("Site administration | Django site admin")


def test_home_leads_to_each_course_and_says_live_now_when_a_stream_starts(app_server, new_page, course, instructor, member):
    from lms.chat.actions import do_create_room

    room = do_create_room(course, creator=instructor, name="General")
    stream = make_stream(course, instructor, title="Genetics live", live=False)
    page = open_as(new_page, app_server, member, "/")
    expect(page.locator("#live-now .stream-card")).to_have_count(0)
    card = page.locator(".course-card", has_text=course.title)
    expect(card.get_by_role("link", name=course.title)).to_have_attribute("href", f"/chat/{room.pk}/")
    expect(card.get_by_role("link", name="Livestreams")).to_be_visible()

    do_start_stream(stream, actor=instructor)
    live = page.locator("#live-now")
    expect(live).to_contain_text("A stream is live now", timeout=10_000)
    live.get_by_role("link", name="Join Genetics live").click()
    page.wait_for_url(f"{app_server.url}/livestream/{stream.pk}/")
    expect(page.locator(".stream-chat")).to_be_visible()
    assert stream.chat_room.name == "Genetics live"


def test_moderation_finds_one_student_among_three_hundred(app_server, new_page, course, instructor):
    from lms.accounts.models import User
    from lms.courses.models import Enrolment

    users = User.objects.bulk_create(
        [User(username=f"student{n:03}", display_name=f"Student {n:03}") for n in range(299)]
        + [User(username="zoe", display_name="Zoë Achterberg")]
    )
    Enrolment.objects.bulk_create([Enrolment(course=course, user=user) for user in users])
    page = open_as(new_page, app_server, instructor, f"/chat/courses/{course.pk}/moderation/")
    members = page.locator("#members li")
    # The search box looks like the site's other fields, not the browser's bare default.
    style = "el => { const s = getComputedStyle(el); return [s.borderRadius, s.paddingLeft, s.borderTopColor]; }"
    assert page.locator("#member-q").evaluate(style) == page.locator("#mute-%d" % users[0].pk).evaluate(style)
    assert page.locator("#member-q").evaluate(style)[0] == "6px"
    expect(page.locator("#members .found")).to_have_text("Showing 25 of 301 students: type a name to narrow the list.")
    expect(members).to_have_count(25)

    page.get_by_label("Find a student by name or username").fill("achter")
    expect(members).to_have_count(1)
    expect(members).to_contain_text("Zoë Achterberg")
    assert "q=achter" in page.url  # the search is in the address, for the back button and reloads
    page.get_by_role("button", name="Mute Zoë Achterberg").click()
    expect(page.locator("[aria-labelledby=mutes-heading]")).to_contain_text("Zoë Achterberg")
    expect(members).to_have_count(1)  # still in the search
    expect(members).to_contain_text("Muted")
    page.get_by_label("Find a student by name or username").fill("@student29")
    expect(members).to_have_count(9)  # student290 to student298


def test_counts_are_plural_and_a_long_question_is_chosen_whole_to_merge_into(app_server, new_page, course, instructor, member):
    from lms.qa.actions import do_set_vote

    stream = make_stream(course, instructor)
    long_text = ("When the cell divides during mitosis, how does it make sure that each daughter cell "
                 "gets exactly one copy of every chromosome?")
    first, _ = do_ask_question(stream, author=member, text=long_text, anonymous=False, client_token=None)
    do_set_vote(first, user=member, voted=True)
    dup, _ = do_ask_question(stream, author=instructor, text="How do chromosomes split evenly?", anonymous=False, client_token=None)
    panel = open_as(new_page, app_server, instructor, f"/livestream/{stream.pk}/manage/")
    queue = panel.locator("#queue-region")
    expect(queue.locator(f"#queue-question-{first.pk} .vote-count")).to_have_text("1 vote")
    expect(queue.locator(f"#queue-question-{dup.pk} .vote-count")).to_have_text("0 votes")

    item = queue.locator(f"#queue-question-{dup.pk}")
    item.get_by_text("Merge into…").click()
    target = item.get_by_role("radio", name=re.compile("every chromosome"))
    expect(item.locator(".merge-target")).to_contain_text(long_text)  # whole, not cut mid-word
    target.check()
    item.get_by_role("button", name="Merge", exact=True).click()
    expect(queue.locator(".question")).to_have_count(1)
    expect(queue.locator(f"#queue-question-{first.pk} .vote-count")).to_have_text(re.compile(r"^\d+ votes?$"))
    assert panel.errors == []
