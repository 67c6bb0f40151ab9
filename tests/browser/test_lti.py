"""An LTI launch in a real browser: the platform's course page form-posts the login into an
iframe, and the person lands, signed in, in the course chat inside it."""

import pytest
from lti_tool.models import Key, LtiDeployment, LtiRegistration
from playwright.sync_api import expect

from tests.lti_platform import LEARNER, Platform, new_login_hint
from tests.servers import AppServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def platform():
    platform = Platform().start()
    yield platform
    platform.stop()


@pytest.fixture
def framed_app(test_database_url, platform):
    """The app, allowing the simulated platform (and it alone) to frame it."""
    server = AppServer({"DATABASE_URL": test_database_url, "LTI_FRAME_ANCESTORS": platform.url}).start()
    yield server
    server.stop()


def test_launch_through_a_form_post_into_an_iframe_lands_in_the_course_chat(framed_app, platform, new_page):
    key = Key.objects.generate()
    registration = LtiRegistration.objects.create(
        name="Simulated Moodle", issuer=platform.issuer, client_id=platform.client_id,
        auth_url=platform.auth_url, token_url=platform.token_url, keyset_url=platform.keyset_url,
    )
    LtiDeployment.objects.create(registration=registration, deployment_id=platform.deployment_id, is_active=True)
    platform.tool_public_keys = [key.public_key]
    platform.tool_init_url = f"{framed_app.url}/lti/init/{registration.uuid}/"
    login_hint = new_login_hint()
    platform.prepare(login_hint, platform.claims(sub="s-1", roles=LEARNER, name="Ana Lima"))

    page = new_page()
    page.goto(f"{platform.url}/course?login_hint={login_hint}")

    tool = page.frame_locator("#tool-frame")
    expect(tool.locator("#composer")).to_be_visible(timeout=20_000)
    assert page.url.startswith(platform.url)  # the top page is still the platform's
    frame = page.frame(name="tool-frame")
    assert frame.url.startswith(f"{framed_app.url}/chat/")

    # Signed in inside the frame: a message goes through (session and CSRF cookies work there).
    tool.locator("#id_body").fill("Hello from inside Moodle")
    tool.get_by_role("button", name="Send").click()
    expect(tool.locator("#messages")).to_contain_text("Hello from inside Moodle")
    assert not page.errors, page.errors
