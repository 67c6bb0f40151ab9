"""The presenter view: an instructor runs a lecture from the stream page alone, with the video,
the live Q&A queue (pin, answer, dismiss, filtered by state) and the current poll side by side."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_pages import make_stream
from tests.browser.test_livestream import open_as
from tests.browser.test_qa import ask

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_instructor_runs_the_qa_and_a_poll_beside_the_video(app_server, new_page, course, instructor, member):
    stream = make_stream(course, instructor)
    presenter = open_as(new_page, app_server, instructor, f"/livestream/{stream.pk}/")
    student = open_as(new_page, app_server, member, f"/livestream/{stream.pk}/")
    expect(presenter.locator(".presenter-main #stage iframe[title='Video call']")).to_be_visible(timeout=10_000)
    side = presenter.locator(".presenter-side")
    queue = side.locator("#queue-region")
    box = presenter.locator(".presenter-main").bounding_box()
    assert side.bounding_box()["x"] >= box["x"] + box["width"]  # beside the video, not below

    ask(student, "What is a centromere?")
    expect(queue.locator(".question")).to_have_count(1, timeout=10_000)
    ask(student, "Is lunch provided?")
    expect(queue.locator(".question")).to_have_count(2, timeout=10_000)
    expect(queue.get_by_role("button", name="Open 2")).to_have_attribute("aria-pressed", "true")

    def item(text):  # by its own text (the merge list inside names the others)
        return queue.locator(".question").filter(has=presenter.locator(".question-text", has_text=text))

    item("centromere").get_by_role("button", name="Pin").click()
    expect(student.locator("#question-region .is-pinned")).to_contain_text("centromere")
    item("lunch").get_by_role("button", name="Dismiss").click()
    expect(queue.get_by_role("button", name="Dismissed 1")).to_be_visible()
    expect(queue.locator(".question:visible")).to_have_count(1)
    item("centromere").get_by_role("button", name="Mark answered").click()
    expect(queue.locator(".question:visible")).to_have_count(0)
    expect(queue.get_by_text("No open questions.")).to_be_visible()

    queue.get_by_role("button", name="Answered 1").click()  # the tab stays chosen as lists arrive
    expect(queue.locator(".question:visible")).to_contain_text(["centromere"])
    queue.get_by_role("button", name="Dismissed 1").click()
    expect(queue.locator(".question:visible")).to_contain_text(["lunch"])
    item("lunch").get_by_role("button", name="Reopen").click()
    expect(queue.get_by_role("button", name="Dismissed 0")).to_have_attribute("aria-pressed", "true")
    expect(queue.get_by_text("Nothing dismissed.")).to_be_visible()

    expect(side.locator("details.new-poll")).to_have_attribute("open", "")  # open while there is no poll
    side.get_by_label("Poll question").fill("Ready for the quiz?")
    side.get_by_label("Options, one per line (2 to 6)").fill("Yes\nNot yet")
    side.get_by_role("button", name="Open poll").click()
    expect(student.locator(".poll")).to_contain_text("Ready for the quiz?", timeout=10_000)
    student.get_by_role("button", name="Yes").click()
    expect(side.locator(".poll-option", has_text="Yes").locator(".poll-figures")).to_have_text("1 vote · 100%")
    side.get_by_role("button", name="Close poll").click()
    expect(student.locator(".poll")).to_contain_text("Closed")
    assert presenter.errors == [] and student.errors == []
