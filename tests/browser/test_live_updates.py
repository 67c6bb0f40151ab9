"""A real browser sees what another process publishes, and survives the server restarting."""

import re

import pytest
from playwright.sync_api import expect

from lms.accounts.actions import do_announce
from tests.browser.conftest import log_in
from tests.servers import AppServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_published_fragment_appears_without_reload(app_server, member, new_page):
    page = new_page()
    log_in(page, app_server, member.username)
    expect(page.locator("[sse-connect]")).to_have_count(1)
    page.evaluate("window.loadedOnce = true")

    do_announce(member, text="Quiz moved to Friday")
    do_announce(member, text='<img src=x onerror="alert(1)"> <script>alert(2)</script>')

    announcements = page.locator("#announcements li")
    expect(announcements).to_have_count(2, timeout=10_000)
    expect(announcements.nth(1)).to_contain_text("Quiz moved to Friday")
    expect(announcements.nth(0)).to_have_text(re.compile(r'^<img src=x onerror="alert\(1\)"> <script>'))
    assert page.locator("#announcements img, #announcements script").count() == 0
    assert page.evaluate("window.loadedOnce") is True  # no reload happened
    assert page.errors == []


def test_the_page_replays_what_it_missed_while_the_server_was_down(test_database_url, member, new_page):
    server = AppServer({"DATABASE_URL": test_database_url}).start()
    try:
        page = new_page()
        log_in(page, server, member.username)
        do_announce(member, text="first")
        expect(page.locator("#announcements li")).to_have_count(1, timeout=10_000)

        server.stop()
        expect(page.locator("#connection-status")).to_have_text("Reconnecting…", timeout=10_000)
        do_announce(member, text="sent while you were away")
        server.start()

        expect(page.locator("#announcements li")).to_have_count(2, timeout=20_000)
        expect(page.locator("#announcements li").first).to_contain_text("sent while you were away")
        expect(page.locator("#connection-status")).to_be_hidden()
        # Once more, to show the stream is live again and nothing came twice.
        do_announce(member, text="after")
        expect(page.locator("#announcements li")).to_have_count(3, timeout=10_000)
        texts = page.locator("#announcements li bdi").all_inner_texts()
        assert texts == ["after", "sent while you were away", "first"]
    finally:
        server.stop()


def test_past_the_stream_limit_the_page_says_so_and_gets_in_once_a_page_closes(
    app_server, member, browser, new_page
):
    first = new_page()
    log_in(first, app_server, member.username)
    signed_in = first.context.storage_state()
    # Chromium holds at most six HTTP/1.1 connections per host in one context: open the
    # other pages in contexts of their own, signed in with the same session.
    contexts = [browser.new_context(storage_state=signed_in) for _ in range(10)]
    try:
        pages = [first] + [context.new_page() for context in contexts[:9]]
        for page in pages[1:]:
            page.goto(app_server.url + "/")
        for page in pages:
            expect(page.locator("#connection-status")).to_be_hidden()

        eleventh = contexts[9].new_page()
        eleventh.goto(app_server.url + "/")
        expect(eleventh.locator("#connection-status")).to_have_text(
            re.compile(r"^Too many live pages are open; retrying in \d+ s…$"), timeout=10_000
        )
        expect(eleventh.locator("[sse-connect]")).to_have_count(1)

        contexts[0].close()  # one tab closes: the eleventh page gets in on a later try
        expect(eleventh.locator("#connection-status")).to_be_hidden(timeout=40_000)
        do_announce(member, text="now live here too")
        expect(eleventh.locator("#announcements li")).to_have_count(1, timeout=10_000)
    finally:
        for context in contexts:
            context.close()


def test_a_stream_past_its_lifetime_reconnects_and_the_page_misses_nothing(test_database_url, member, new_page):
    server = AppServer({"DATABASE_URL": test_database_url, "REALTIME_STREAM_MAX_SECONDS": "3"}).start()
    try:
        page = new_page()
        opened = []
        page.on("request", lambda request: "/events/" in request.url and opened.append(request))
        log_in(page, server, member.username)
        page.evaluate("window.loadedOnce = true")
        do_announce(member, text="first")
        expect(page.locator("#announcements li")).to_have_count(1, timeout=10_000)

        # Past its lifetime the stream closes; the browser reopens it with its last event id.
        waited = 0
        while len(opened) < 2:
            assert waited < 10_000, "the stream was not reopened"
            page.wait_for_timeout(100)
            waited += 100
        assert opened[1].all_headers().get("last-event-id")
        do_announce(member, text="after the reconnect")
        expect(page.locator("#announcements li")).to_have_count(2, timeout=10_000)
        texts = page.locator("#announcements li bdi").all_inner_texts()
        assert texts == ["after the reconnect", "first"]
        assert page.evaluate("window.loadedOnce") is True  # resumed, not reloaded
        # htmx logs the EventSource's "error" event (a reconnect) to the console: nothing else.
        assert set(page.errors) <= {"[object Event]"}
    finally:
        server.stop()
