"""Error pages with DEBUG off: the site's layout, a plain sentence, a way back."""

import html as html_lib

import pytest
from django.test import Client, override_settings
from django.urls import path

from lms import urls as site_urls


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = site_urls.urlpatterns + [path("boom/", boom)]
handler403, handler404, handler500 = (getattr(site_urls, f"handler{n}", None) for n in (403, 404, 500))


@pytest.mark.django_db
@override_settings(DEBUG=False)
def test_404_and_403_pages_have_the_layout_a_sentence_and_a_way_home(client, member, caplog):
    client.force_login(member)
    page = client.get("/no/such/page/")
    assert page.status_code == 404
    html = html_lib.unescape(page.content.decode())
    assert "This page doesn't exist" in html and 'class="site-header"' in html
    assert 'href="/"' in html and "Go to the home page" in html
    assert member.name in html  # the signed-in layout

    page = client.get("/livestream/new/")  # students do not schedule streams
    assert page.status_code == 403
    assert "You don't have access to this page" in html_lib.unescape(page.content.decode())
    assert "Go to the home page" in page.content.decode()


@pytest.mark.django_db
@override_settings(DEBUG=False, ROOT_URLCONF=__name__)
def test_500_page_is_drawn_without_the_request(member, caplog):
    client = Client(raise_request_exception=False)
    client.force_login(member)
    page = client.get("/boom/")
    assert page.status_code == 500
    html = html_lib.unescape(page.content.decode())
    assert "Something went wrong on our side" in html and 'class="site-header"' in html
    assert "Go to the home page" in html
    assert member.name not in html  # no request: nothing about the user is read again
    assert "RuntimeError" not in html and "Traceback" not in html
    assert any(r.levelname == "ERROR" and r.name == "django.request" for r in caplog.records)


@pytest.mark.django_db
def test_a_streams_chat_room_is_named_after_the_stream_and_follows_its_title(course, instructor):
    from datetime import timedelta

    from django.utils import timezone

    from lms.livestream.actions import do_create_stream, do_update_stream

    starts = timezone.now() + timedelta(hours=1)
    stream = do_create_stream(course, creator=instructor, title="Cell biology", starts_at=starts, ends_at=starts + timedelta(hours=1))
    assert stream.chat_room.name == "Cell biology"
    do_update_stream(stream, title="Cell biology, part 2 " + "and much more " * 10)
    stream.chat_room.refresh_from_db()
    assert stream.chat_room.name.startswith("Cell biology, part 2 and much more")
    assert stream.chat_room.name.endswith("more…") and len(stream.chat_room.name) <= 80


@pytest.mark.django_db
def test_staff_are_labelled_staff(member):
    from tests.factories import UserFactory

    assert member.get_role_display() == "Student"
    assert UserFactory(is_staff=True, role="instructor").get_role_display() == "Staff"


@pytest.mark.django_db
def test_the_peak_is_never_below_the_count_shown(client, course, instructor, member, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    import lms.livestream.views
    from lms.livestream.actions import do_create_stream, do_start_stream

    starts = timezone.now()
    stream = do_start_stream(do_create_stream(course, creator=instructor, title="Live", starts_at=starts,
                                              ends_at=starts + timedelta(hours=1)), actor=instructor)
    monkeypatch.setattr(lms.livestream.views, "occupancy", lambda name: 3)  # the peak is not written yet
    client.force_login(member)
    page = html_lib.unescape(client.get(f"/livestream/{stream.pk}/").content.decode())
    assert "3 watching · peak 3" in page


@pytest.mark.django_db
def test_an_ended_stream_without_questions_says_so_once(client, course, instructor, member):
    from datetime import timedelta

    from django.utils import timezone

    from lms.livestream.actions import do_create_stream, do_end_stream, do_start_stream

    starts = timezone.now()
    stream = do_start_stream(do_create_stream(course, creator=instructor, title="Live", starts_at=starts,
                                              ends_at=starts + timedelta(hours=1)), actor=instructor)
    do_end_stream(stream, actor=instructor)
    client.force_login(member)
    page = client.get(f"/livestream/{stream.pk}/").content.decode()
    assert "No questions were asked during this stream." in page
    assert "0 questions" not in page and "Ask the first" not in page and 'id="ask-form"' not in page
