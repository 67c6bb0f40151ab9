"""The recording page in a real browser: chapters, and a click seeks the video."""

import io
import wave
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from lms.chat.models import Message
from lms.livestream.actions import do_create_stream, do_end_stream, do_start_stream
from lms.livestream.models import Recording, Stream
from lms.qa.actions import do_answer_question, do_ask_question
from lms.qa.models import Question
from tests.browser.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

CLIP = "https://videos.example/lecture.wav"


def silent_clip(seconds: int = 30) -> bytes:
    """A small media file the browser can play and seek (8 kHz mono silence)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(1)
        clip.setframerate(8000)
        clip.writeframes(b"\x80" * 8000 * seconds)
    return out.getvalue()


@pytest.fixture
def recorded(course, instructor, member):
    starts = timezone.now() - timedelta(hours=1)
    stream = do_start_stream(
        do_create_stream(course, creator=instructor, title="Cells", starts_at=starts, ends_at=starts + timedelta(hours=1)),
        actor=instructor,
    )
    question, _ = do_ask_question(stream, author=member, text="Why do cells divide?")
    do_answer_question(question)
    do_end_stream(stream, actor=instructor)
    # Put the items at known times in the recording: the question at 0:12, answered at 0:20.
    started = stream.started_at
    Question.objects.filter(pk=question.pk).update(created=started + timedelta(seconds=12), answered_at=started + timedelta(seconds=20))
    Message.objects.filter(room=stream.chat_room).delete()
    Recording.objects.create(stream=Stream.objects.get(pk=stream.pk), url=CLIP, added_by=instructor)
    return stream


def test_clicking_a_question_or_chapter_seeks_the_recording(app_server, new_page, recorded, member):
    page = new_page()
    page.route(CLIP, lambda route: route.fulfill(body=silent_clip(), content_type="audio/wav"))
    log_in(page, app_server, member.username)
    page.goto(f"{app_server.url}/livestream/{recorded.pk}/recording/")
    expect(page.locator(".chapters")).to_contain_text("Why do cells divide?")
    video = page.locator("#recording-video")
    page.wait_for_function("() => document.getElementById('recording-video').readyState >= 1")
    assert video.evaluate("v => v.currentTime") == 0

    page.locator(".transcript-item", has_text="Why do cells divide?").get_by_role("button").click()
    page.wait_for_function("() => Math.abs(document.getElementById('recording-video').currentTime - 12) < 1.5")
    expect(page.locator(".transcript-item.is-current")).to_contain_text("Why do cells divide?")

    page.locator(".chapters").get_by_role("button").click()
    page.wait_for_function("() => Math.abs(document.getElementById('recording-video').currentTime - 20) < 1.5")
    assert page.errors == []
