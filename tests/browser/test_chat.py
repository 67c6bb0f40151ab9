"""Two people in one room, in real browsers: everything one does, the other sees live."""

import pytest
from playwright.sync_api import expect

from lms.chat.actions import do_post_message
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_in_room(app_server, new_page, room, member, ben):
    pages = []
    for user in (member, ben):
        page = new_page()
        page.dialogs = []  # alerts an injected script would open; confirms are ours and accepted
        page.on("dialog", lambda dialog, page=page: on_dialog(page, dialog))
        log_in(page, app_server, user.username)
        page.goto(f"{app_server.url}/chat/{room.pk}/")
        expect(page.locator("#connection-status")).to_be_hidden()
        pages.append(page)
    return pages


def on_dialog(page, dialog):
    if dialog.type == "confirm":
        dialog.accept()
    else:
        page.dialogs.append(dialog.message)
        dialog.dismiss()


def message_box(page):
    return page.get_by_role("textbox", name="Message", exact=True)


def send(page, text):
    message_box(page).fill(text)
    page.get_by_role("button", name="Send").click()


def test_a_message_reaches_the_other_reader_without_reload(two_in_room):
    ana, ben = two_in_room
    ben.evaluate("window.notReloaded = true")
    # Clock both ends in the pages themselves: from the click in one to the message in the DOM
    # of the other (same machine, same clock), without Playwright's polling in between.
    ben.evaluate("""() => new MutationObserver((changes, observer) => {
        if (document.querySelector("#messages .message")) { window.arrived = Date.now(); observer.disconnect(); }
    }).observe(document.getElementById("messages"), {childList: true})""")
    message_box(ana).fill("Has anyone started the lab report?")
    clicked = ana.evaluate("() => { const t = Date.now(); document.querySelector('#composer [type=submit]').click(); return t; }")
    expect(ben.locator("#messages .message").last).to_contain_text("Has anyone started the lab report?")
    print(f"\npost to the other browser showing it: {ben.evaluate('window.arrived') - clicked} ms")
    expect(ana.locator("#messages .message").last).to_contain_text("Has anyone started the lab report?")
    expect(message_box(ana)).to_have_value("")
    assert ben.evaluate("window.notReloaded") is True
    expect(ben.locator("#messages .message")).to_have_count(1)  # not twice
    assert ana.errors == [] and ben.errors == []


def test_edits_and_deletes_reach_the_other_reader(two_in_room):
    ana, ben = two_in_room
    send(ana, "Meet at 5")
    mine = ana.locator("#messages .message").last
    expect(mine).to_contain_text("Meet at 5")
    mine.hover()
    mine.get_by_role("button", name="Edit").click()
    box = ana.get_by_role("textbox", name="Edit message")
    box.fill("Meet at 6")
    ana.get_by_role("button", name="Save").click()
    theirs = ben.locator("#messages .message").last
    expect(theirs).to_contain_text("Meet at 6")
    expect(theirs).to_contain_text("(edited)")
    expect(theirs.get_by_role("button", name="Edit")).to_be_hidden()  # not Ben's to edit

    ana.locator("#messages .message").last.get_by_role("button", name="Delete").click()
    expect(theirs).to_contain_text("Message deleted")
    expect(theirs).not_to_contain_text("Meet at 6")


def test_a_reply_quotes_the_message_and_jumps_to_it(two_in_room, room, member):
    ana, ben = two_in_room
    send(ana, "Which chapter is on the quiz?")
    original = ben.locator("#messages .message").last
    expect(original).to_contain_text("Which chapter")
    original.get_by_role("button", name="Reply").click()
    expect(ben.locator("#composer .replying")).to_contain_text("Which chapter is on the quiz?")
    send(ben, "Chapter 3")
    reply = ana.locator("#messages .message").last
    expect(reply).to_contain_text("Chapter 3")
    expect(reply.locator(".quote")).to_contain_text("Which chapter is on the quiz?")
    expect(ben.locator("#composer .replying")).to_have_count(0)
    reply.locator(".quote").click()
    expect(ana.locator("#messages .message.is-highlighted")).to_contain_text("Which chapter is on the quiz?")


def test_enter_sends_and_shift_enter_breaks_the_line(two_in_room):
    ana, ben = two_in_room
    box = message_box(ana)
    box.click()
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    box.press("Enter")
    last = ben.locator("#messages .message").last
    expect(last.locator(".message-text")).to_have_text("first line\nsecond line")
    assert last.locator(".message-text br").count() == 1
    expect(box).to_have_value("")


def test_older_history_loads_when_scrolled_up(app_server, new_page, room, member):
    for n in range(1, 81):
        do_post_message(room, author=member, body=f"note {n}")
    page = new_page()
    log_in(page, app_server, member.username)
    page.goto(f"{app_server.url}/chat/{room.pk}/")
    messages = page.locator("#messages .message")
    expect(messages).to_have_count(50)
    expect(messages.first).to_contain_text("note 31")
    page.locator("#message-scroller").evaluate("el => el.scrollTop = 0")
    expect(messages).to_have_count(80)
    expect(messages.first).to_contain_text("note 1")
    expect(page.locator(".history-start")).to_be_visible()


def test_html_in_a_message_shows_as_text_and_runs_nothing(two_in_room):
    ana, ben = two_in_room
    payload = '<img src=x onerror="alert(1)"><script>alert(2)</script>[click](javascript:alert(3))'
    send(ana, payload)
    last = ben.locator("#messages .message").last
    expect(last).to_contain_text('<img src=x onerror="alert(1)"><script>alert(2)</script>click')
    assert last.locator(".message-text img, .message-text script, .message-text a").count() == 0
    assert ben.dialogs == [] and ana.dialogs == []


def test_a_refused_post_says_why_and_keeps_the_text(two_in_room):
    ana, _ = two_in_room
    too_long = "x" * 4001
    send(ana, too_long)
    expect(ana.locator("#composer .form-error")).to_contain_text("4,000")
    expect(message_box(ana)).to_have_value(too_long)
    for n in range(10):
        send(ana, f"quick {n}")
        expect(message_box(ana)).to_have_value("")
    send(ana, "one too many")
    expect(ana.locator("#composer .form-error")).to_contain_text("Slow down")
    expect(message_box(ana)).to_have_value("one too many")
