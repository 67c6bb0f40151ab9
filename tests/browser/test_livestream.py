"""A stream in real browsers: waiting room to live to ended, the Jitsi call asked for, viewers."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from lms.livestream.actions import do_create_stream
from tests.browser.conftest import log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# There is no internet here: the page's request for Jitsi's script is answered by a stand-in
# that records what the page asked for and draws an empty iframe where the call would be.
FAKE_EXTERNAL_API = """
window.JitsiMeetExternalAPI = function (domain, options) {
  window.jitsiCalls = (window.jitsiCalls || []).concat([{
    domain: domain, room: options.roomName, jwt: options.jwt || null,
    name: options.userInfo.displayName, config: options.configOverwrite
  }]);
  var frame = document.createElement("iframe");
  frame.title = "Video call";
  frame.src = "about:blank";
  options.parentNode.appendChild(frame);
  this.getIFrame = function () { return frame; };
  this.dispose = function () { frame.remove(); };
};
"""


@pytest.fixture
def stream(course, instructor):
    starts = timezone.now() + timedelta(minutes=10)
    return do_create_stream(course, creator=instructor, title="Cell biology", starts_at=starts,
                            ends_at=starts + timedelta(hours=1))


@pytest.fixture
def students(course, member):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return [member, ben]


def open_as(new_page, server, user, path):
    page = new_page()
    page.script_requests = []

    def fake_jitsi(route):
        page.script_requests.append(route.request.url)
        route.fulfill(body=FAKE_EXTERNAL_API, content_type="application/javascript")

    page.route("https://meet.jit.si/external_api.js", fake_jitsi)
    log_in(page, server, user.username)
    page.goto(server.url + path)
    expect(page.locator("#connection-status")).to_be_hidden()
    return page


def test_waiting_students_go_live_when_the_instructor_starts_and_see_the_end(
    app_server, new_page, stream, students, instructor
):
    watchers = [open_as(new_page, app_server, s, f"/livestream/{stream.pk}/") for s in students]
    for page in watchers:
        expect(page.locator("#stage")).to_contain_text("Waiting room")
        page.evaluate("window.notReloaded = true")
    panel = open_as(new_page, app_server, instructor, f"/livestream/{stream.pk}/manage/")
    expect(panel.locator(".viewers-now")).to_contain_text("2 watching", timeout=10_000)

    panel.get_by_role("button", name="Start stream").click()
    for page, student in zip(watchers, students):
        expect(page.locator("#stage iframe[title='Video call']")).to_be_visible(timeout=10_000)
        assert page.script_requests == ["https://meet.jit.si/external_api.js"]
        [call] = page.evaluate("window.jitsiCalls")
        assert call["domain"] == "meet.jit.si"
        assert call["room"] == stream.jitsi_room
        assert call["name"] == student.name
        assert call["config"]["startWithAudioMuted"] is True and call["config"]["startWithVideoMuted"] is True
        allow = page.locator("#stage iframe").get_attribute("allow")
        assert {"camera", "microphone", "display-capture", "fullscreen"} <= {p.strip() for p in allow.split(";")}
        assert page.evaluate("window.notReloaded") is True
        # Students get no warning meant for the host, and no host controls.
        expect(page.get_by_role("button", name="End stream")).to_have_count(0)

    panel.get_by_role("button", name="End stream").click()
    for page in watchers:
        expect(page.locator("#stage")).to_contain_text("Stream ended", timeout=10_000)
        expect(page.locator("#stage iframe")).to_have_count(0)
        assert page.errors == []


def test_the_host_joins_unmuted_and_is_told_about_the_public_server_limit(app_server, new_page, stream, instructor):
    page = open_as(new_page, app_server, instructor, f"/livestream/{stream.pk}/")
    page.get_by_role("button", name="Start stream").click()
    page.wait_for_url(f"{app_server.url}/livestream/{stream.pk}/manage/")
    page.goto(f"{app_server.url}/livestream/{stream.pk}/")
    expect(page.locator("#stage iframe")).to_be_visible()
    [call] = page.evaluate("window.jitsiCalls")
    assert call["config"]["startWithAudioMuted"] is False
    expect(page.locator("#stage .notice")).to_contain_text("5 minutes")
