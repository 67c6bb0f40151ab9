"""The messaging basics people expect from Slack and Zulip, in real browsers, two people live."""

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
def ben(course):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


def open_room(new_page, server, user, room):
    page = new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, server, user.username)
    page.goto(f"{server.url}/chat/{room.pk}/")
    expect(page.locator("#connection-status")).to_be_hidden()
    return page


def box(page):
    return page.get_by_role("textbox", name="Message", exact=True)


def send(page, text):
    box(page).fill(text)
    page.get_by_role("button", name="Send").click()


def opacity(locator):
    return locator.evaluate("el => getComputedStyle(el).opacity")


def test_the_message_toolbar_shows_on_hover_and_is_reached_by_keyboard(app_server, new_page, room, member, ben):
    do_post_message(room, author=ben, body="Is the lab open today?")
    ana = open_room(new_page, app_server, member, room)
    message = ana.locator("#messages .message").last
    toolbar = message.get_by_role("toolbar", name="Message actions")
    ana.mouse.move(0, 0)
    expect(toolbar).to_have_css("opacity", "0")
    # Not three links under every message any more: one toolbar, on hover...
    message.hover()
    expect(toolbar).to_have_css("opacity", "1")
    expect(toolbar.get_by_role("button", name="Reply")).to_be_visible()
    expect(toolbar.get_by_role("button", name="Edit")).to_be_hidden()  # Ben's message
    expect(toolbar.get_by_role("button", name="Delete")).to_be_hidden()
    expect(toolbar.get_by_text("Mute author")).to_be_hidden()  # students moderate nobody
    ana.mouse.move(0, 0)
    expect(toolbar).to_have_css("opacity", "0")
    # ... and by keyboard: the next stop after the conversation is the message's Reply.
    ana.locator("#message-scroller").focus()
    ana.keyboard.press("Tab")
    expect(toolbar.get_by_role("button", name="Reply")).to_be_focused()
    expect(toolbar).to_have_css("opacity", "1")
    ana.keyboard.press("Enter")
    expect(ana.locator("#composer .replying")).to_contain_text("Is the lab open today?")
    assert ana.errors == []


def test_an_instructor_mutes_the_author_from_the_message(app_server, new_page, room, member, instructor):
    do_post_message(room, author=member, body="spam spam spam")
    ines = open_room(new_page, app_server, instructor, room)
    ana = open_room(new_page, app_server, member, room)
    message = ines.locator("#messages .message").last
    message.hover()
    message.get_by_text("Mute author").click()
    message.get_by_role("combobox").select_option("10m")
    message.get_by_role("button", name="Mute", exact=True).click()
    expect(ines.locator("#room-status")).to_contain_text("is muted")
    expect(ines).to_have_url(f"{app_server.url}/chat/{room.pk}/")  # the instructor stays in the room
    expect(box(ana)).to_be_disabled()  # the student's composer says so, live
    expect(ana.locator("#composer .notice")).to_contain_text("You are muted")
    assert ines.errors == [] and ana.errors == []


def test_reactions_are_live_for_everyone_and_one_per_person(app_server, new_page, room, member, ben):
    do_post_message(room, author=ben, body="Slides are up")
    ana = open_room(new_page, app_server, member, room)
    bens = open_room(new_page, app_server, ben, room)
    bens.locator("#messages .message").last.evaluate("el => el.notReplaced = true")
    message = ana.locator("#messages .message").last
    message.hover()
    message.get_by_role("button", name="React with 👍").click()
    theirs = bens.locator("#messages .message").last.locator(".reaction", has_text="👍")
    expect(theirs.locator(".count")).to_have_text("1")
    expect(theirs).to_have_attribute("aria-pressed", "false")  # not Ben's
    ours = message.locator(".reaction", has_text="👍")
    expect(ours).to_have_attribute("aria-pressed", "true")
    # Who reacted, on hover and on keyboard focus.
    theirs.hover()
    assert "reacted with 👍" in theirs.evaluate("el => getComputedStyle(el, '::after').content")
    theirs.focus()
    assert member.name in theirs.evaluate("el => getComputedStyle(el, '::after').content")
    theirs.click()  # Ben joins in
    expect(ours.locator(".count")).to_have_text("2")
    expect(theirs).to_have_attribute("aria-pressed", "true")
    # The picker, by keyboard: opens on the first emoji, arrows move, Enter picks, focus returns.
    message.hover()
    more = message.get_by_role("button", name="React", exact=True)
    more.focus()
    ana.keyboard.press("Enter")
    picker = ana.get_by_role("dialog", name="Add a reaction")
    expect(picker).to_be_visible()
    expect(picker.locator("[data-react]").first).to_be_focused()
    ana.keyboard.press("ArrowRight")
    ana.keyboard.press("Enter")
    expect(picker).to_be_hidden()
    expect(more).to_be_focused()
    expect(bens.locator("#messages .message").last.locator(".reaction", has_text="❤️")).to_have_count(1)
    # Clicking one's own reaction takes it back.
    ours.click()
    expect(theirs.locator(".count")).to_have_text("1")
    expect(ours).to_have_attribute("aria-pressed", "false")
    assert bens.locator("#messages .message").last.evaluate("el => el.notReplaced") is True  # only the bar was swapped
    assert ana.errors == [] and bens.errors == []


def test_days_are_separated_and_a_persons_messages_grouped_on_the_page_in_history_and_live(
    app_server, new_page, room, member, ben
):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import MessageFactory

    now = timezone.now()
    eight_days, five_days = now - timedelta(days=8), now - timedelta(days=5)
    for n in range(3):
        MessageFactory(room=room, author=ben, body=f"old {n}", created=eight_days + timedelta(seconds=n))
    for n in range(48):  # Ben, then Ana every tenth: groups break at each change of author
        MessageFactory(room=room, author=member if n % 10 == 9 else ben, body=f"week {n:02d}",
                       created=five_days + timedelta(seconds=30 * n))
    MessageFactory(room=room, author=ben, body="much later", created=five_days + timedelta(hours=1))
    MessageFactory(room=room, author=ben, body="yesterday's", created=now - timedelta(days=1))
    ana = open_room(new_page, app_server, member, room)
    bens = open_room(new_page, app_server, ben, room)
    messages = ana.locator("#messages .message")
    expect(messages).to_have_count(50)
    weekday = ana.evaluate(
        "ts => new Intl.DateTimeFormat(undefined, {weekday: 'long'}).format(new Date(ts * 1000))", five_days.timestamp()
    )
    separators = ana.locator("#messages > .day-separator")
    expect(separators).to_have_count(2)
    expect(separators.nth(0)).to_contain_text(weekday)
    expect(separators.nth(1)).to_have_text("Yesterday")
    expect(ana.locator("#messages > .day-separator + .message")).to_contain_text(["week 00", "yesterday's"])
    # Grouped: Ben's 2nd to 9th messages, not his first, not Ana's, not after an hour's pause.
    expect(ana.locator(".message:not(.is-grouped)", has_text="week 00")).to_have_count(1)
    expect(ana.locator(".message.is-grouped", has_text="week 03")).to_have_count(1)
    expect(ana.locator(".message:not(.is-grouped)", has_text="week 09")).to_have_count(1)  # Ana's
    expect(ana.locator(".message:not(.is-grouped)", has_text="week 10")).to_have_count(1)  # Ben again
    expect(ana.locator(".message:not(.is-grouped)", has_text="much later")).to_have_count(1)
    expect(ana.locator(".message.is-grouped", has_text="week 03").locator(".author")).to_be_hidden()
    expect(ana.locator(".message.is-grouped", has_text="week 03").locator(".avatar")).to_be_hidden()
    # History: older messages come in with their own day, and no separator is left doubled.
    ana.locator("#message-scroller").evaluate("el => el.scrollTop = 0")
    expect(messages).to_have_count(53)
    expect(separators).to_have_count(3)
    expect(ana.locator("#messages > .day-separator + .message").first).to_contain_text("old 0")
    expect(ana.locator(".message.is-grouped", has_text="old 1")).to_have_count(1)
    # Live: the first message today gets "Today"; the next by the same person is grouped with it.
    send(bens, "morning all")
    expect(ana.locator("#messages > .day-separator").last).to_have_text("Today")
    expect(ana.locator("#messages > .day-separator + .message").last).to_contain_text("morning all")
    send(bens, "coffee first")
    expect(ana.locator(".message.is-grouped", has_text="coffee first")).to_have_count(1)
    expect(separators).to_have_count(4)
    send(ana, "same here")
    expect(ana.locator(".message:not(.is-grouped)", has_text="same here")).to_have_count(1)
    expect(bens.locator(".message:not(.is-grouped)", has_text="same here")).to_have_count(1)
    assert ana.errors == [] and bens.errors == []


def test_avatars_show_initials_on_a_colour_of_the_persons_own_with_enough_contrast(app_server, new_page, room, member, ben):
    do_post_message(room, author=ben, body="apples")
    do_post_message(room, author=member, body="bananas")
    ana = open_room(new_page, app_server, member, room)
    bens_avatar = ana.locator(".message", has_text="apples").locator(".avatar")
    expect(bens_avatar).to_have_text("BO")  # Ben Okafor
    expect(bens_avatar).to_be_visible()
    colours = [ana.locator(".message", has_text=t).locator(".avatar").evaluate("el => getComputedStyle(el).backgroundColor")
               for t in ("apples", "bananas")]
    assert colours[0] != colours[1]
    for avatar in ana.locator(".avatar").all():
        ratio = avatar.evaluate("""el => {
            const rgb = s => s.match(/\\d+/g).slice(0, 3).map(Number);
            const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                               return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
            const style = getComputedStyle(el);
            const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))];
            return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        }""")
        assert ratio >= 4.5


def test_drafts_are_kept_per_room_across_switches_and_reloads_and_cleared_when_sent(app_server, new_page, room, member, course, instructor):
    other = do_create_room(course, creator=instructor, name="Labs")
    ana = open_room(new_page, app_server, member, room)
    box(ana).press_sequentially("half a thought", delay=5)
    ana.get_by_role("link", name="Labs").first.click()
    ana.wait_for_url(f"{app_server.url}/chat/{other.pk}/")
    expect(box(ana)).to_have_value("")  # each room its own draft
    box(ana).fill("")
    box(ana).press_sequentially("lab note", delay=5)
    ana.get_by_role("link", name="General").first.click()
    ana.wait_for_url(f"{app_server.url}/chat/{room.pk}/")
    expect(box(ana)).to_have_value("half a thought")
    ana.reload()
    expect(box(ana)).to_have_value("half a thought")
    ana.get_by_role("button", name="Send").click()
    expect(ana.locator("#messages .message").last).to_contain_text("half a thought")
    expect(box(ana)).to_have_value("")
    ana.reload()
    expect(ana.locator("#messages .message")).to_have_count(1)
    expect(box(ana)).to_have_value("")  # sent: forgotten
    ana.goto(f"{app_server.url}/chat/{other.pk}/")
    expect(box(ana)).to_have_value("lab note")
    assert ana.errors == []


def test_reply_puts_the_cursor_in_the_box_and_escape_cancels_an_edit(app_server, new_page, room, member, ben):
    do_post_message(room, author=ben, body="Who has the key?")
    do_post_message(room, author=member, body="Not me")
    ana = open_room(new_page, app_server, member, room)
    theirs = ana.locator(".message", has_text="Who has the key?")
    theirs.hover()
    theirs.get_by_role("button", name="Reply").click()
    expect(ana.locator("#composer .replying")).to_contain_text("Who has the key?")
    expect(box(ana)).to_be_focused()
    ana.keyboard.type("Ines does")
    expect(box(ana)).to_have_value("Ines does")
    mine = ana.locator(".message", has_text="Not me")
    mine.hover()
    mine.get_by_role("button", name="Edit").click()
    edit = ana.get_by_role("textbox", name="Edit message")
    expect(edit).to_be_focused()
    edit.fill("Not me, sorry")
    edit.press("Escape")
    expect(ana.locator(".edit-form")).to_have_count(0)
    expect(ana.locator(".message", has_text="Not me")).not_to_contain_text("sorry")  # cancelled, not saved
    expect(box(ana)).to_be_focused()
    expect(box(ana)).to_have_value("Ines does")
    assert ana.errors == []


def drop_connection(page):
    """The reader's stream breaks and cannot be reopened (new ones are refused at the network)
    until `restore_connection`: what a train tunnel does, with the server still up."""
    page.route("**/events/**", lambda route: route.abort())
    page.evaluate("""() => {
        const source = document.querySelector("[sse-connect]")["htmx-internal-data"].sseEventSource;
        source.close();
        source.onerror(new Event("error"));
    }""")


def test_after_a_gap_too_long_to_replay_every_missed_message_is_marked_new(app_server, new_page, room, member, ben):
    from lms.realtime.hub import REPLAY_LIMIT

    do_post_message(room, author=ben, body="before the outage")
    ana = open_room(new_page, app_server, member, room)
    drop_connection(ana)
    expect(ana.locator("#connection-status")).to_have_text("Reconnecting…")
    for n in range(REPLAY_LIMIT + 10):  # more than a resume replays: the list is fetched again
        do_post_message(room, author=ben, body=f"missed {n}")
    ana.unroute("**/events/**")
    messages = ana.locator("#messages .message")
    expect(messages.last).to_contain_text(f"missed {REPLAY_LIMIT + 9}", timeout=40_000)
    expect(ana.locator("#connection-status")).to_be_hidden()
    expect(ana.locator("#messages .message", has_text="before the outage")).to_have_count(0)
    expect(ana.locator("#messages .message:not(.is-new)")).to_have_count(0)
    assert messages.count() >= 50


def sent_tokens(page, room):
    """The client tokens of the page's posts to `room`, in order."""
    tokens = []
    page.on("request", lambda request: request.method == "POST" and request.url.endswith(f"/chat/{room.pk}/messages/")
            and tokens.append(dict(p.split("=", 1) for p in (request.post_data or "").split("&"))["client_token"]))
    return tokens


def test_a_send_that_fails_says_not_sent_and_retry_sends_it_once(app_server, new_page, room, member, ben):
    from lms.chat.models import Message

    ana = open_room(new_page, app_server, member, room)
    bens = open_room(new_page, app_server, ben, room)
    tokens = sent_tokens(ana, room)
    posts = f"**/chat/{room.pk}/messages/"
    # A server error: the text stays and the composer says so.
    ana.route(posts, lambda route: route.fulfill(status=500, body="boom"))
    send(ana, "Is the exam open-book?")
    not_sent = ana.locator("#composer .send-failed")
    expect(not_sent).to_be_visible()
    expect(not_sent).to_contain_text("Not sent")
    expect(box(ana)).to_have_value("Is the exam open-book?")
    # The post arrived, but its answer was lost: Retry sends the same token, stored once.
    ana.unroute(posts)
    ana.route(posts, lambda route: (route.fetch(), route.abort()))
    not_sent.get_by_role("button", name="Retry").click()
    expect(bens.locator("#messages .message", has_text="Is the exam open-book?")).to_have_count(1)
    expect(not_sent).to_be_visible()
    ana.unroute(posts)
    not_sent.get_by_role("button", name="Retry").click()
    expect(not_sent).to_be_hidden()
    expect(box(ana)).to_have_value("")
    assert len(tokens) == 3 and len(set(tokens)) == 1
    assert Message.objects.filter(room=room, body="Is the exam open-book?").count() == 1
    expect(bens.locator("#messages .message", has_text="Is the exam open-book?")).to_have_count(1)
    # Changed text after a failure is another message: a new token.
    ana.route(posts, lambda route: route.abort())
    send(ana, "first try")
    expect(not_sent).to_be_visible()
    ana.unroute(posts)
    send(ana, "second try")
    expect(bens.locator("#messages .message").last).to_contain_text("second try")
    assert tokens[-1] != tokens[-2]


def test_a_send_while_the_connection_is_down_goes_when_it_comes_back(app_server, new_page, room, member, ben):
    ana = open_room(new_page, app_server, member, room)
    bens = open_room(new_page, app_server, ben, room)
    drop_connection(ana)
    ana.route(f"**/chat/{room.pk}/messages/", lambda route: route.abort())
    send(ana, "sent from the tunnel")
    expect(ana.locator("#composer .send-failed")).to_be_visible()
    expect(box(ana)).to_have_value("sent from the tunnel")
    ana.unroute(f"**/chat/{room.pk}/messages/")
    ana.unroute("**/events/**")
    expect(bens.locator("#messages .message", has_text="sent from the tunnel")).to_have_count(1, timeout=20_000)
    expect(ana.locator("#composer .send-failed")).to_be_hidden()
    expect(box(ana)).to_have_value("")


def test_the_tab_title_counts_unread_and_mark_all_as_read_clears_every_tab(
    app_server, new_page, room, member, ben, course, instructor
):
    labs = do_create_room(course, creator=instructor, name="Labs")
    do_post_message(room, author=ben, body="one")
    do_post_message(labs, author=ben, body="two")
    ana = new_page()
    log_in(ana, app_server, member.username)
    ana.goto(f"{app_server.url}/chat/")
    expect(ana).to_have_title("(2) Chat · Course live")
    other_tab = ana.context.new_page()
    other_tab.goto(f"{app_server.url}/chat/{labs.pk}/")  # reading Labs: one left, in General
    expect(other_tab).to_have_title("(1) Labs · Course live")
    expect(ana).to_have_title("(1) Chat · Course live")
    bens = open_room(new_page, app_server, ben, room)
    send(bens, "three")  # counted live by both tabs
    expect(ana).to_have_title("(2) Chat · Course live")
    expect(other_tab).to_have_title("(2) Labs · Course live")
    ana.get_by_role("button", name="Mark all as read").click()
    expect(ana).to_have_title("Chat · Course live")
    expect(other_tab).to_have_title("Labs · Course live")  # pushed to every tab
    expect(ana.locator("[data-unread-room]:visible")).to_have_count(0)
    expect(ana.get_by_role("button", name="Mark all as read")).to_be_hidden()  # nothing left to mark
    ana.reload()
    expect(ana).to_have_title("Chat · Course live")
    assert ana.errors == []


def in_viewport(page, locator):
    box = locator.bounding_box()
    size = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] + box["width"] <= size["width"]


def test_on_a_phone_the_room_list_is_reached_without_scrolling_past_the_conversation(
    app_server, new_page, room, member, ben, course, instructor
):
    labs = do_create_room(course, creator=instructor, name="Labs")
    for n in range(30):
        do_post_message(room, author=ben, body=f"a long conversation, line {n}")
    do_post_message(labs, author=ben, body="lab time")
    ana = new_page()
    ana.set_viewport_size({"width": 390, "height": 844})
    log_in(ana, app_server, member.username)
    ana.goto(f"{app_server.url}/chat/{room.pk}/")
    rooms = ana.get_by_role("button", name="Rooms")
    expect(rooms).to_be_visible()
    assert ana.evaluate("window.scrollY") == 0 and in_viewport(ana, rooms)
    expect(rooms.locator("[data-rooms-unread]")).to_have_text("1")  # Labs has news
    expect(ana.get_by_role("navigation", name="Rooms")).to_be_hidden()
    rooms.click()
    expect(rooms).to_have_attribute("aria-expanded", "true")
    labs_link = ana.get_by_role("navigation", name="Rooms").get_by_role("link", name="Labs")
    expect(labs_link).to_be_visible()
    assert in_viewport(ana, labs_link)
    labs_link.click()
    ana.wait_for_url(f"{app_server.url}/chat/{labs.pk}/")
    expect(ana.locator("#messages .message").last).to_contain_text("lab time")
    # On a wide screen the list stays beside the conversation, with no button.
    ana.set_viewport_size({"width": 1280, "height": 800})
    expect(ana.get_by_role("button", name="Rooms")).to_be_hidden()
    expect(ana.get_by_role("navigation", name="Rooms")).to_be_visible()
    assert ana.errors == []
