"""Pages left open as people leave them: quiet when idle, reading reported, badges and dots right."""

import pytest
from playwright.sync_api import expect

from lms.chat.actions import do_create_room, do_post_message
from tests.browser.conftest import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def room(course, instructor):
    return do_create_room(course, creator=instructor, name="General")


@pytest.fixture
def other_room(course, instructor):
    return do_create_room(course, creator=instructor, name="Week 5")


@pytest.fixture
def ben(course):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


def open_page(new_page, server, user, path):
    page = new_page()
    log_in(page, server, user.username)
    page.goto(server.url + path)
    expect(page.locator("#connection-status")).to_be_hidden()
    # A function, not an expression: Playwright evals an expression in the page, which the CSP refuses.
    page.wait_for_function("() => document.querySelector('[sse-connect]')['htmx-internal-data'].sseEventSource.readyState === 1")
    return page


def count_requests(page, server):
    """The requests the page makes to the app from now on, its event stream aside."""
    made = []
    page.on("request", lambda request: request.url.startswith(server.url) and "/events/" not in request.url
            and made.append(f"{request.method} {request.url}"))
    return made


def send(page, text):
    box = page.get_by_role("textbox", name="Message", exact=True)
    box.fill(text)
    box.press("Enter")
    expect(page.locator("#messages .message").last).to_contain_text(text)


def test_idle_pages_make_no_request_but_their_event_stream(app_server, new_page, room, member, ben, instructor):
    from lms.livestream.actions import do_create_stream, do_start_stream
    from django.utils import timezone

    now = timezone.now()
    stream = do_start_stream(
        do_create_stream(room.course, creator=instructor, title="Lecture", starts_at=now, ends_at=now + timezone.timedelta(hours=1)),
        actor=instructor,
    )
    panel = open_page(new_page, app_server, instructor, f"/livestream/{stream.pk}/manage/")
    with panel.expect_response(lambda response: "/stats/" in response.url, timeout=10_000):
        # The panel's statistics follow the viewer arriving (coalesced); then all is quiet.
        pages = [
            open_page(new_page, app_server, member, f"/chat/{room.pk}/"),
            open_page(new_page, app_server, ben, f"/livestream/{stream.pk}/"),
            panel,
        ]
    made = [count_requests(page, app_server) for page in pages]
    pages[0].wait_for_timeout(10_000)  # a measurement window, not a wait for something to happen
    assert made == [[], [], []]


def test_a_stream_viewer_asks_nothing_while_the_chat_runs(app_server, new_page, member, ben, instructor, course):
    from lms.livestream.actions import do_create_stream, do_start_stream
    from django.utils import timezone

    now = timezone.now()
    stream = do_start_stream(
        do_create_stream(course, creator=instructor, title="Lecture", starts_at=now, ends_at=now + timezone.timedelta(hours=1)),
        actor=instructor,
    )
    viewer = open_page(new_page, app_server, ben, f"/livestream/{stream.pk}/")
    speaker = open_page(new_page, app_server, member, f"/livestream/{stream.pk}/")
    made = count_requests(viewer, app_server)
    for n in range(5):
        send(speaker, f"Question {n}?")
    expect(viewer.locator("#messages .message")).to_have_count(5)
    viewer.wait_for_timeout(3_000)  # past the page's read-report delay: still nothing
    assert made == []


def test_reading_an_open_room_is_reported_coalesced_and_seen_by_the_author(app_server, new_page, room, member, ben):
    ana = open_page(new_page, app_server, member, f"/chat/{room.pk}/")
    bens = open_page(new_page, app_server, ben, f"/chat/{room.pk}/")
    made = count_requests(bens, app_server)
    for n in range(5):
        send(ana, f"Point {n}")
    mine = ana.locator("#messages .message").last
    expect(mine.locator(".seen")).to_have_text("Seen by 1", timeout=8_000)
    expect(mine.locator(".seen")).to_have_attribute("title", ben.name)
    reports = [line for line in made if line.startswith("POST") and "/read/" in line]
    assert 1 <= len(reports) <= 3, made  # five messages, at most one report every 2 s
    # The room Ben is reading never shows itself as unread to him.
    expect(bens.locator(f"[data-unread-room='{room.pk}']")).to_be_hidden()
    expect(bens.locator("[data-unread-total]")).to_be_hidden()


def test_a_post_elsewhere_is_counted_without_a_request(app_server, new_page, room, other_room, member, ben):
    ana = open_page(new_page, app_server, member, f"/chat/{other_room.pk}/")
    bens = open_page(new_page, app_server, ben, f"/chat/{room.pk}/")
    made = count_requests(bens, app_server)
    send(ana, "Over here")
    send(ana, "And again")
    expect(bens.locator(f"[data-unread-room='{other_room.pk}']")).to_have_text("2")
    expect(bens.locator("[data-unread-total]")).to_have_text("2")
    assert not [line for line in made if "/unread/" in line]
    bens.locator(f"#room-summary-{other_room.pk} a").click()
    expect(bens.locator("[data-unread-total]")).to_be_hidden()


def test_online_dots_follow_people_arriving_and_leaving(app_server, new_page, room, member, ben):
    do_post_message(room, author=ben, body="Anyone here?")
    ana = open_page(new_page, app_server, member, f"/chat/{room.pk}/")
    dot = ana.locator(f"#messages .presence-dot[data-presence='{ben.pk}']")
    expect(dot).not_to_have_class("presence-dot is-online")
    bens = open_page(new_page, app_server, ben, "/chat/")
    expect(dot).to_have_class("presence-dot is-online", timeout=3_000)
    bens.close()
    expect(dot).not_to_have_class("presence-dot is-online", timeout=5_000)
