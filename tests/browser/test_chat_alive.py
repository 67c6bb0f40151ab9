"""Chat that feels alive, in real browsers: typing, presence, receipts, unread, mentions, reconnects."""

import pytest
from playwright.sync_api import expect

from lms.chat.actions import do_post_message
from tests.browser.conftest import log_in
from tests.servers import AppServer

pytestmark = pytest.mark.django_db(transaction=True)


def open_room(new_page, server, user, room):
    page = new_page()
    log_in(page, server, user.username)
    page.goto(f"{server.url}/chat/{room.pk}/")
    expect(page.locator("#connection-status")).to_be_hidden()
    return page


def box(page):
    return page.get_by_role("textbox", name="Message", exact=True)


def test_typing_appears_for_the_other_reader_and_vanishes(app_server, new_page, room, member, ben):
    ana = open_room(new_page, app_server, member, room)
    bens = open_room(new_page, app_server, ben, room)
    box(ana).press_sequentially("Hello the", delay=30)
    expect(bens.locator("#typing-indicator")).to_have_text(f"{member.name} is typing…", use_inner_text=True)
    expect(ana.locator("#typing-indicator")).to_have_text("", use_inner_text=True)  # not shown to oneself
    # Gone 6 s after the last signal (the indicator then empties on the server's word).
    expect(bens.locator("#typing-indicator")).to_have_text("", timeout=12_000, use_inner_text=True)
    box(ana).press_sequentially("re", delay=30)
    expect(bens.locator("#typing-indicator")).to_have_text(f"{member.name} is typing…", use_inner_text=True)
    box(ana).press("Enter")
    expect(bens.locator("#messages .message").last).to_contain_text("Hello there")
    expect(bens.locator("#typing-indicator")).to_have_text("", timeout=3_000, use_inner_text=True)  # at once on sending


def test_presence_follows_who_has_the_room_open(app_server, new_page, room, member, ben):
    bens = open_room(new_page, app_server, ben, room)
    present = bens.locator("#room-presence")
    expect(present).not_to_contain_text(member.name)
    ana = open_room(new_page, app_server, member, room)
    expect(present).to_contain_text(member.name, timeout=3_000)  # within 2 s of opening
    ana.close()
    expect(present).not_to_contain_text(member.name, timeout=5_000)  # a clean close: at once


def test_seen_by_appears_once_the_other_reads(app_server, new_page, room, member, ben):
    ana = open_room(new_page, app_server, member, room)
    box(ana).fill("Did you finish the reading?")
    box(ana).press("Enter")
    mine = ana.locator("#messages .message").last
    expect(mine).to_contain_text("Did you finish the reading?")
    expect(mine.locator(".seen")).to_have_text("")
    open_room(new_page, app_server, ben, room)
    expect(mine.locator(".seen")).to_have_text("Seen by 1", timeout=5_000)
    expect(mine.locator(".seen")).to_have_attribute("title", ben.name)


def test_unread_count_rises_with_a_post_elsewhere_and_clears_on_opening(app_server, new_page, room, other_room, member, ben):
    ana = open_room(new_page, app_server, member, room)
    bens = new_page()
    log_in(bens, app_server, ben.username)
    bens.goto(f"{app_server.url}/chat/")
    badge = bens.locator(f"[data-unread-room='{other_room.pk}']")
    expect(badge).to_be_hidden()
    ana.goto(f"{app_server.url}/chat/{other_room.pk}/")
    for text in ("First", "Second"):
        box(ana).fill(text)
        box(ana).press("Enter")
        expect(ana.locator("#messages .message").last).to_contain_text(text)
    expect(badge).to_have_text("2", timeout=5_000)
    expect(bens.locator("[data-unread-total]")).to_have_text("2")
    bens.locator(f"#room-summary-{other_room.pk} a").click()
    expect(bens.locator("#messages .message")).to_have_count(2)
    expect(bens.locator("[data-unread-total]")).to_be_hidden(timeout=5_000)
    bens.goto(f"{app_server.url}/chat/")
    expect(bens.locator(f"[data-unread-room='{other_room.pk}']")).to_be_hidden(timeout=5_000)


def test_a_mention_autocompletes_highlights_and_notifies(app_server, new_page, room, member, ben):
    ana = open_room(new_page, app_server, member, room)
    bens = open_room(new_page, app_server, ben, room)
    box(ana).press_sequentially("Thanks @be", delay=40)
    option = ana.locator("#mention-suggestions [role=option]", has_text="@ben")
    expect(option).to_be_visible()
    box(ana).press("Enter")  # chooses the name, does not send
    expect(box(ana)).to_have_value("Thanks @ben ")
    box(ana).press_sequentially("for the notes", delay=10)
    box(ana).press("Enter")
    message = bens.locator("#messages .message").last
    expect(message.locator(".mention")).to_have_text("@ben")
    expect(bens.locator("#notifications-badge")).to_have_text("1", timeout=5_000)
    bens.get_by_role("link", name="Notifications").click()
    expect(bens.locator(".notification")).to_contain_text("for the notes")
    expect(bens.locator("#notifications-badge")).to_be_hidden()


def test_messages_missed_while_the_server_was_down_arrive_marked_new(test_database_url, new_page, room, member, ben):
    server = AppServer({"DATABASE_URL": test_database_url}).start()
    try:
        ana = open_room(new_page, server, member, room)
        server.stop()
        expect(ana.locator("#connection-status")).to_have_text("Reconnecting…", timeout=10_000)
        for n in range(3):
            do_post_message(room, author=ben, body=f"missed {n}")
        server.start()
        messages = ana.locator("#messages .message")
        expect(messages).to_have_count(3, timeout=20_000)
        assert messages.all_inner_texts() and all("missed" in t for t in messages.all_inner_texts())
        expect(ana.locator("#messages .message.is-new")).to_have_count(3)
        expect(ana.locator("#connection-status")).to_be_hidden()
    finally:
        server.stop()
