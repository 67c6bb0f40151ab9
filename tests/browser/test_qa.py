"""Live Q&A and polls with two students and an instructor, in real browsers."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from lms.livestream.actions import do_create_stream, do_start_stream
from tests.browser.test_livestream import open_as
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_stream(course, instructor):
    starts = timezone.now()
    stream = do_create_stream(course, creator=instructor, title="Genetics", starts_at=starts,
                              ends_at=starts + timedelta(hours=1))
    return do_start_stream(stream, actor=instructor)


@pytest.fixture
def people(app_server, new_page, live_stream, course, member, instructor):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    ana_page = open_as(new_page, app_server, member, f"/livestream/{live_stream.pk}/")
    ben_page = open_as(new_page, app_server, ben, f"/livestream/{live_stream.pk}/")
    panel = open_as(new_page, app_server, instructor, f"/livestream/{live_stream.pk}/manage/")
    return ana_page, ben_page, panel


def ask(page, text, anonymous=False):
    page.get_by_role("textbox", name="Question").fill(text)
    if anonymous:
        page.get_by_label("Ask anonymously").check()
    page.get_by_role("button", name="Ask").click()


def questions(page):
    return page.locator("#question-region .question")


def test_asked_upvoted_reordered_and_pinned_live(people, member):
    ana, ben, panel = people
    ask(ben, "Will this be on the exam?")
    expect(questions(ana)).to_have_count(1)
    ask(ana, "Can you explain crossing over again?", anonymous=True)
    expect(questions(ben)).to_have_count(2, timeout=2_000)  # within a second or so
    expect(questions(ben).nth(1)).to_contain_text("Anonymous")
    expect(panel.locator("#queue-region .question").nth(1)).to_contain_text(member.name)  # instructors see who asked
    assert member.name not in ben.content()

    # Ben upvotes Ana's question: it climbs to the top for Ana, with its count. Clocked in the
    # pages: from Ben's click to Ana's list showing the new order.
    ana.evaluate("""() => new MutationObserver((changes, observer) => {
        const first = document.querySelector("#question-region .question");
        if (first && first.textContent.includes("crossing over")) { window.reordered = Date.now(); observer.disconnect(); }
    }).observe(document.getElementById("question-region"), {childList: true, subtree: true})""")
    upvote = ben.locator(".question", has_text="crossing over").get_by_role("button", name="Upvote")
    clicked = upvote.evaluate("button => { const t = Date.now(); button.click(); return t; }")
    expect(questions(ana).first).to_contain_text("crossing over")
    print(f"\nupvote to the other browser showing the new order: {ana.evaluate('window.reordered') - clicked} ms")
    expect(questions(ana).first.locator(".vote-count")).to_have_text("1")
    expect(ben.locator(".question", has_text="crossing over").get_by_role("button", name="Upvote")).to_have_attribute("aria-pressed", "true")
    expect(ana.locator(".question", has_text="crossing over").get_by_role("button", name="Upvote")).to_have_attribute("aria-pressed", "false")
    # Only Ana may withdraw her (anonymous) question.
    expect(ana.locator(".question", has_text="crossing over").get_by_role("button", name="Withdraw")).to_be_visible()
    expect(ben.locator(".question", has_text="crossing over").get_by_role("button", name="Withdraw")).to_be_hidden()

    # Taking the vote back.
    ben.locator(".question", has_text="crossing over").get_by_role("button", name="Upvote").click()
    expect(questions(ana).first.locator(".vote-count")).to_have_text("0")

    queue_item = panel.locator("#queue-region .question").filter(has=panel.locator(".question-text", has_text="exam"))
    queue_item.get_by_role("button", name="Pin").click()
    for page in (ana, ben):
        pinned = page.locator("#question-region .question.is-pinned")
        expect(pinned).to_contain_text("Will this be on the exam?")
        expect(pinned).to_contain_text("Being answered now")
        expect(questions(page).first).to_have_class(re.compile(r"\bis-pinned\b"))
    assert ana.errors == [] and ben.errors == [] and panel.errors == []


def test_a_poll_is_opened_voted_on_and_closed_live(people):
    ana, ben, panel = people
    panel.get_by_label("Poll question").fill("Which topic next?")
    panel.get_by_label("Options, one per line (2 to 6)").fill("Meiosis\nMitosis\nMutations")
    panel.get_by_role("button", name="Open poll").click()
    for page in (ana, ben):
        expect(page.locator(".poll")).to_contain_text("Which topic next?")
    ana.get_by_role("button", name="Mitosis").click()
    # Ben votes once Ana's vote has reached his page: a click on a button that the pushed
    # results are replacing at that very moment can land on the old one.
    expect(ben.locator(".poll-option", has_text="Mitosis").locator(".poll-figures")).to_have_text("1 vote · 100%")
    ben.get_by_role("button", name="Mitosis").click()
    for page in (ana, ben, panel):
        option = page.locator(".poll-option", has_text="Mitosis")
        expect(option.locator(".poll-figures")).to_have_text("2 votes · 100%")
        expect(option.locator("meter")).to_have_attribute("value", "100")
    # Ben changes his mind: the bars move for everyone.
    ben.get_by_role("button", name="Meiosis").click()
    for page in (ana, ben, panel):
        expect(page.locator(".poll-option", has_text="Mitosis").locator(".poll-figures")).to_have_text("1 vote · 50%")
        expect(page.locator(".poll-option", has_text="Meiosis").locator(".poll-figures")).to_have_text("1 vote · 50%")
    expect(ben.get_by_role("button", name="Meiosis")).to_have_attribute("aria-pressed", "true")
    expect(ben.get_by_role("button", name="Mitosis")).to_have_attribute("aria-pressed", "false")

    panel.get_by_role("button", name="Close poll").click()
    for page in (ana, ben):
        expect(page.locator(".poll")).to_contain_text("Closed")
        expect(page.get_by_role("button", name="Meiosis")).to_have_count(0)
        expect(page.locator(".poll-option", has_text="Meiosis").locator(".poll-figures")).to_have_text("1 vote · 50%")
