"""Every page, as a student, an instructor and staff, at 1280x800 and 390x844: a screenshot of
each (kept under the temp dir for CI; the README's under docs/screenshots/ when
SCREENSHOTS_UPDATE=1) and none may scroll sideways at 360 px."""

import os
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from lms.chat.models import Room
from lms.courses.models import Course
from lms.livestream.models import Stream
from tests.browser.conftest import log_in
from tests.browser.test_livestream import FAKE_EXTERNAL_API

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
SHOTS = Path(os.environ.get("SCREENSHOTS_DIR", Path(tempfile.gettempdir()) / "lms-screenshots"))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# The README's pages: (who, page name) -> the file under docs/screenshots/.
README_SHOTS = {("student", "chat-room"), ("instructor", "stream-live"), ("student", "stream-live")}

PASSWORD = "demo-password-2026"


@pytest.fixture
def sample(db):
    call_command("create_sample_data", stdout=open(os.devnull, "w"))
    bio = Course.objects.get(code="BIO101")
    streams = {s.state: s for s in Stream.objects.filter(course=bio)}
    return {
        "course": bio,
        "room": Room.objects.get(course=bio, name="General"),
        "live": streams[Stream.State.LIVE],
        "scheduled": streams[Stream.State.SCHEDULED],
        "ended": streams[Stream.State.ENDED],
    }


def pages_for(who: str, s: dict) -> dict[str, str]:
    room, live, scheduled, ended = s["room"].pk, s["live"].pk, s["scheduled"].pk, s["ended"].pk
    pages = {
        "home": "/",
        "chat-home": "/chat/",
        "chat-room": f"/chat/{room}/",
        "chat-search": f"/chat/{room}/search/?q=lab",
        "notifications": "/chat/notifications/",
        "profile": "/accounts/profile/",
        "streams": "/livestream/",
        "stream-live": f"/livestream/{live}/",
        "stream-waiting": f"/livestream/{scheduled}/",
        "stream-ended": f"/livestream/{ended}/",
        "recording": f"/livestream/{ended}/recording/",
        "not-found": "/no-such-page/",
    }
    if who in ("instructor", "staff"):
        pages |= {
            "stream-new": "/livestream/new/",
            "stream-edit": f"/livestream/{scheduled}/edit/",
            "manage-live": f"/livestream/{live}/manage/",
            "manage-ended": f"/livestream/{ended}/manage/",
            "moderation": f"/chat/courses/{s['course'].pk}/moderation/",
        }
    return pages


# The innermost elements that reach past the window's right edge, to say what to fix.
WIDEST = """() => Array.from(document.querySelectorAll("main *")).filter(el => {
  const r = el.getBoundingClientRect();
  return r.right > document.documentElement.clientWidth + 0.5 && r.width > 0
    && !Array.from(el.children).some(c => c.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5);
}).slice(0, 5).map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && el.className.baseVal === undefined ? "." + el.className.split(" ").join(".") : ""))"""


def settle(page):
    """Live pages connected, fonts and images in: what a person sees after a moment."""
    if page.locator("#live[sse-connect]").count():
        expect(page.locator("#connection-status")).to_be_hidden()
    page.evaluate("document.fonts.ready")
    page.wait_for_load_state("load")


def sideways(page) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("who,username", [("student", "ana"), ("instructor", "ines"), ("staff", "admin")])
def test_every_page_fits_and_is_photographed(app_server, new_page, sample, who, username):
    page = new_page()
    page.route("https://meet.jit.si/**", lambda route: route.fulfill(body=FAKE_EXTERNAL_API, content_type="application/javascript"))
    page.route("https://archive.org/**", lambda route: route.abort())
    log_in(page, app_server, username, PASSWORD)
    wide = []
    for name, path in pages_for(who, sample).items():
        for size, (width, height) in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(app_server.url + path)
            expect(page.locator("main")).to_be_visible()
            settle(page)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SHOTS / f"{who}-{name}-{size}.png", full_page=True)
            if os.environ.get("SCREENSHOTS_UPDATE") and (who, name) in README_SHOTS:
                DOCS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=DOCS / f"{who}-{name}-{size}.png")
        page.set_viewport_size({"width": 360, "height": 740})
        page.goto(app_server.url + path)
        expect(page.locator("main")).to_be_visible()
        if sideways(page) > 0:
            culprits = page.evaluate(WIDEST)
            wide.append(f"{path}: {sideways(page)} px too wide at 360 px, past the edge: {culprits}")
    assert not wide, "\n".join(wide)
