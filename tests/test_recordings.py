"""After the stream: recordings, the timed transcript, exports and the viewers chart."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from lms.chat.actions import do_post_message
from lms.chat.models import Message, Notification
from lms.livestream.actions import do_create_stream, do_end_stream, do_record_viewer_count, do_start_stream
from lms.livestream.models import Recording, ViewerSample
from lms.livestream.transcript import clock, safe_cell, timeline, to_markdown, viewers_chart
from lms.qa.actions import do_answer_question, do_ask_question
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ended(course, instructor, member):
    starts = timezone.now() - timedelta(hours=2)
    stream = do_create_stream(course, creator=instructor, title="Cells", starts_at=starts, ends_at=starts + timedelta(hours=1))
    stream = do_start_stream(stream, actor=instructor)
    do_post_message(stream.chat_room, author=instructor, body="=HYPERLINK(\"http://evil\")")
    question, _ = do_ask_question(stream, author=member, text="What is *ATP*? <b>", anonymous=True)
    do_answer_question(question)
    stream = do_end_stream(stream, actor=instructor)
    return stream


def attach(client, stream, **data):
    return client.post(reverse("livestream:recording_attach", args=[stream.pk]), data)


def test_attaching_a_link_tells_the_course_and_notifies_its_members(client, ended, instructor, member):
    client.force_login(instructor)
    response = attach(client, ended, url="https://videos.example/cells.mp4")
    assert response.status_code == 302
    assert Recording.objects.get(stream=ended).url == "https://videos.example/cells.mp4"
    announcement = Message.objects.filter(room__course=ended.course, body__contains="recording of").get()
    assert f"/livestream/{ended.pk}/recording/" in announcement.body
    assert Notification.objects.filter(user=member, message=announcement).exists()


@pytest.mark.parametrize(
    "data, error",
    [
        ({"url": "javascript:alert(1)"}, "Enter a valid URL"),
        ({"url": "ftp://videos.example/a.mp4"}, "http or https"),
        ({}, "either a video file or a link"),
        ({"file": SimpleUploadedFile("notes.pdf", b"%PDF", content_type="application/pdf")}, "Upload a video"),
        ({"file": SimpleUploadedFile("clip.mp4", b"x" * 20, content_type="video/mp4"), "url": "https://a.example/b.mp4"}, "not both"),
    ],
)
def test_bad_recordings_are_refused_with_a_clear_message(client, ended, instructor, data, error):
    client.force_login(instructor)
    response = attach(client, ended, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Recording.objects.filter(stream=ended).exists()


def test_an_upload_over_the_size_limit_is_refused(client, ended, instructor, settings):
    settings.RECORDING_MAX_BYTES = 10
    client.force_login(instructor)
    response = attach(client, ended, file=SimpleUploadedFile("clip.webm", b"x" * 11, content_type="video/webm"))
    assert response.status_code == 400
    assert "too large" in response.content.decode()


def test_an_uploaded_file_is_served_to_members_only(client, ended, instructor, member, stranger, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(instructor)
    assert attach(client, ended, file=SimpleUploadedFile("clip.webm", b"webm-bytes", content_type="video/webm")).status_code == 302
    url = reverse("livestream:recording_file", args=[ended.pk])
    client.force_login(member)
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"webm-bytes"
    client.force_login(stranger)
    assert client.get(url).status_code == 404


def test_replacing_a_recording_deletes_the_old_file_and_notifies_nobody_again(
    client, ended, instructor, member, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(instructor)
    with django_capture_on_commit_callbacks(execute=True):
        attach(client, ended, file=SimpleUploadedFile("take1.webm", b"first", content_type="video/webm"))
    first = tmp_path / Recording.objects.get(stream=ended).file.name
    assert first.read_bytes() == b"first"
    with django_capture_on_commit_callbacks(execute=True):
        response = attach(client, ended, file=SimpleUploadedFile("take2.webm", b"second", content_type="video/webm"))
    assert response.status_code == 302
    second = tmp_path / Recording.objects.get(stream=ended).file.name
    assert second.read_bytes() == b"second"
    assert not first.exists()
    assert [p.name for p in second.parent.iterdir()] == [second.name]
    announcements = Message.objects.filter(room__course=ended.course, body__contains="recording of")
    assert announcements.count() == 1
    assert Notification.objects.filter(user=member, message__in=announcements).count() == 1
    # A link in place of the file: the file goes too, and still no second @all.
    with django_capture_on_commit_callbacks(execute=True):
        attach(client, ended, url="https://videos.example/cells.mp4")
    assert not second.exists()
    assert announcements.count() == 1


def test_a_rolled_back_replacement_keeps_the_old_file(ended, instructor, settings, tmp_path):
    from django.db import transaction

    from lms.livestream.actions import do_attach_recording

    settings.MEDIA_ROOT = tmp_path
    do_attach_recording(ended, actor=instructor, file=SimpleUploadedFile("a.webm", b"a"))
    kept = tmp_path / Recording.objects.get(stream=ended).file.name
    try:
        with transaction.atomic():
            do_attach_recording(ended, actor=instructor, url="https://videos.example/x.mp4")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert kept.exists()
    assert Recording.objects.get(stream=ended).file


def test_students_cannot_attach_or_export(client, ended, member):
    client.force_login(member)
    assert attach(client, ended, url="https://videos.example/x.mp4").status_code == 403
    for fmt in ("csv", "md"):
        assert client.get(reverse("livestream:transcript", args=[ended.pk, fmt])).status_code == 403


def test_recording_page_is_for_members_and_keeps_anonymous_askers_anonymous(client, ended, member, stranger, instructor):
    Recording.objects.create(stream=ended, url="https://videos.example/cells.mp4", added_by=instructor)
    url = reverse("livestream:recording", args=[ended.pk])
    client.force_login(stranger)
    assert client.get(url).status_code == 404
    classmate = UserFactory(username="ben", display_name="Ben Okafor")
    ended.course.enrolments.create(user=classmate)
    client.force_login(classmate)
    page = client.get(url).content.decode()
    assert 'src="https://videos.example/cells.mp4"' in page
    assert "Chapters" in page and "What is *ATP*? &lt;b&gt;" in page
    assert "Anonymous" in page and member.name not in page  # the question was asked anonymously


def test_recording_page_is_404_without_a_recording(client, ended, member):
    client.force_login(member)
    assert client.get(reverse("livestream:recording", args=[ended.pk])).status_code == 404


def test_csv_export_neutralises_formulas_and_keeps_anonymity_unless_asked(client, ended, instructor, member):
    client.force_login(instructor)
    rows = list(csv.reader(io.StringIO(client.get(reverse("livestream:transcript", args=[ended.pk, "csv"])).content.decode())))
    assert rows[0] == ["time", "kind", "author", "text", "answered", "votes"]
    message = next(r for r in rows if r[1] == "message")
    assert message[3] == "'=HYPERLINK(\"http://evil\")"
    question = next(r for r in rows if r[1] == "question")
    assert question[2] == "Anonymous" and question[4] == "yes"
    named = client.get(reverse("livestream:transcript", args=[ended.pk, "csv"]) + "?names=1").content.decode()
    assert member.name in named


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_safe_cell_neutralises_each_formula_start(value):
    assert safe_cell(value) == "'" + value


def test_markdown_export_escapes_markup(ended):
    text = to_markdown(ended, timeline(ended))
    assert "What is \\*ATP\\*? \\<b\\>" in text
    assert "<b>" not in text


def test_clock_is_minutes_and_seconds_then_hours():
    assert (clock(5), clock(65), clock(3725)) == ("00:05", "01:05", "1:02:05")


def test_viewer_counts_while_live_become_one_point_a_minute(course, instructor):
    starts = timezone.now()
    stream = do_start_stream(do_create_stream(course, creator=instructor, title="Live", starts_at=starts,
                                              ends_at=starts + timedelta(hours=1)), actor=instructor)
    for count in (3, 7, 5):
        do_record_viewer_count(stream.pk, count)
    [sample] = ViewerSample.objects.filter(stream=stream)
    assert sample.viewers == 5  # the last count of the minute
    stream.refresh_from_db()
    assert stream.peak_viewers == 7


def test_viewers_chart_marks_the_peak(course, instructor, ended):
    start = ended.started_at.replace(second=0, microsecond=0)
    for minute, viewers in enumerate([1, 4, 2]):
        ViewerSample.objects.create(stream=ended, minute=start + timedelta(minutes=minute), viewers=viewers)
    chart = viewers_chart(ended)
    assert chart["peak"] == 4
    points = [tuple(map(float, p.split(","))) for p in chart["points"].split()]
    assert len(points) == 3 and points[1] == (chart["peak_x"], chart["peak_y"])
    assert points[1][1] < points[0][1] and points[1][1] < points[2][1]  # higher on screen


def test_control_panel_shows_the_chart_and_export_links(client, ended, instructor):
    ViewerSample.objects.create(stream=ended, minute=ended.started_at, viewers=3)
    client.force_login(instructor)
    page = client.get(reverse("livestream:manage", args=[ended.pk])).content.decode()
    assert "<svg" in page and "peak 3" in page
    assert reverse("livestream:transcript", args=[ended.pk, "csv"]) in page
