"""Writes refused past their rate limit (429) say "slow down" on the page, in a real browser."""

import pytest
from playwright.sync_api import expect

from lms.chat.actions import do_create_room, do_post_message
from tests.browser.conftest import log_in
from tests.servers import AppServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def strict_server(test_database_url):
    """An app server that allows one deletion and one edit per person per 10 minutes."""
    server = AppServer({"DATABASE_URL": test_database_url, "RATE_LIMIT_DELETE": "1/600", "RATE_LIMIT_EDIT": "1/600"})
    yield server.start()
    server.stop()


@pytest.fixture
def page_in_room(strict_server, new_page, course, instructor, member):
    room = do_create_room(course, creator=instructor, name="General")
    for text in ("First", "Second", "Third"):
        do_post_message(room, author=member, body=text)
    page = new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this message for everyone?"
    log_in(page, strict_server, member.username)
    page.goto(f"{strict_server.url}/chat/{room.pk}/")
    expect(page.locator("#connection-status")).to_be_hidden()
    return page


def message(page, text):
    return page.locator("#messages .message", has_text=text)


def test_a_refused_delete_shows_a_notice_and_keeps_the_message(page_in_room):
    page = page_in_room
    notice = page.locator("#slow-down")
    expect(notice).to_be_hidden()
    first = message(page, "First")
    first.hover()
    first.get_by_role("button", name="Delete").click()
    expect(page.locator("#messages")).not_to_contain_text("First")
    second = message(page, "Second")
    second.hover()
    second.get_by_role("button", name="Delete").click()
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Slow down")
    expect(message(page, "Second")).to_be_visible()  # not deleted


def test_a_refused_edit_keeps_the_text_and_says_slow_down(page_in_room):
    page = page_in_room
    editing = page.locator("#messages .is-editing")
    for text, new in (("First", "First, edited"), ("Second", "Second, edited")):
        expect(editing).to_have_count(0)  # the last edit is back from the event stream
        item = message(page, text)
        item.hover()
        item.get_by_role("button", name="Edit").click()
        page.get_by_role("textbox", name="Edit message").fill(new)
        page.get_by_role("button", name="Save").click()
    expect(editing).to_contain_text("Slow down")
    expect(page.get_by_role("textbox", name="Edit message")).to_have_value("Second, edited")
    expect(page.locator("#messages")).to_contain_text("First, edited")
