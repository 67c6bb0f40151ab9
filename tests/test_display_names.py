"""Names people choose: printable only, and shown with the username where identity matters."""

import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from icalendar import Calendar

from lms.accounts.actions import do_regenerate_calendar_token
from lms.accounts.forms import ProfileForm
from lms.accounts.models import User
from lms.chat.models import Room
from lms.livestream.actions import do_create_stream, do_start_stream
from lms.qa.actions import do_ask_question
from tests.factories import MessageFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db

UNPRINTABLE = ["Ana\nMoreau", "Ana\rMoreau", "Ana\tMoreau", "Ana\x00", "Ana\x1b[31m", "Ana\x85Moreau",
               "Ana\u2028Moreau", "\u202eAna", "Ana\u2066x\u2069"]
PRINTABLE = ["Inés Moreau", "李雷", "محمد علي", "Ana 👩\u200d🔬", "O'Brien-Smith", "Zoë (she/her)"]


def profile_form(name: str) -> ProfileForm:
    return ProfileForm({"display_name": name, "timezone": "UTC", "send_read_receipts": "on"}, instance=User())


@pytest.mark.parametrize("name", UNPRINTABLE)
def test_profile_refuses_control_characters_in_display_name(name):
    form = profile_form(name)
    assert not form.is_valid()
    assert form.errors["display_name"]  # NUL bytes have Django's own message; the rest ours


@pytest.mark.parametrize("name", PRINTABLE)
def test_profile_accepts_names_of_every_script(name):
    assert profile_form(name).is_valid()


def test_profile_page_refuses_a_line_feed(client, member):
    client.force_login(member)
    response = client.post("/accounts/profile/", {"display_name": "Ana\nRoot", "timezone": "UTC"})
    assert response.status_code == 200
    member.refresh_from_db()
    assert "\n" not in member.display_name


@pytest.mark.parametrize("field", ["display_name", "first_name", "last_name"])
def test_every_name_field_refuses_control_characters(member, field):
    """The admin's forms validate the model's fields, so this holds there too."""
    setattr(member, field, "Ana\nRoot")
    with pytest.raises(ValidationError) as error:
        member.full_clean()
    assert field in error.value.message_dict


def test_admin_change_form_refuses_a_line_feed_in_a_name(rf, member):
    staff = UserFactory(is_staff=True, is_superuser=True)
    request = rf.get("/")
    request.user = staff
    form_class = site._registry[User].get_form(request, member, change=True)
    data = {**form_class(instance=member).initial, "display_name": "Ana\nRoot", "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00", "timezone": "UTC", "role": "student", "username": member.username}
    form = form_class(data, instance=member)
    assert not form.is_valid()
    assert "display_name" in form.errors


def test_sample_data_still_loads():
    from django.core.management import call_command

    call_command("create_sample_data", stdout=open("/dev/null", "w"))
    assert User.objects.exists()


def test_calendar_feed_of_a_name_stored_with_a_line_feed_works(member):
    """Names stored before the check: shown with the control characters made spaces."""
    User.objects.filter(pk=member.pk).update(display_name="Ana\nMoreau\r\n")
    token = do_regenerate_calendar_token(member)
    response = Client().get(f"/livestream/calendar/{token}.ics")
    assert response.status_code == 200
    assert Calendar.from_ical(response.content)["X-WR-CALNAME"] == "Course live: Ana Moreau"


def test_message_author_is_shown_with_the_username(client, course, member, instructor):
    room = RoomFactory(course=course)
    impostor = UserFactory(username="mallory", display_name=instructor.name)
    course.enrolments.create(user=impostor)
    MessageFactory(room=room, author=impostor, body="Exam moved to Friday")
    client.force_login(member)
    page = client.get(reverse("chat:room", args=[room.pk])).content.decode()
    assert '<span class="muted username">@mallory</span>' in page


def test_message_someone_lists_usernames(client, course, member, instructor):
    client.force_login(member)
    page = client.get(reverse("chat:home")).content.decode()
    assert f"@{instructor.username}</span>" in page
    assert not Room.objects.exists()


def test_instructors_queue_names_the_asker_with_the_username(client, course, member, instructor):
    from datetime import timedelta

    from django.utils import timezone

    starts = timezone.now() - timedelta(minutes=5)
    stream = do_start_stream(
        do_create_stream(course, creator=instructor, title="Cells", starts_at=starts, ends_at=starts + timedelta(hours=1)),
        actor=instructor,
    )
    do_ask_question(stream, author=member, text="Why?", anonymous=True)
    client.force_login(instructor)
    page = client.get(reverse("livestream:manage", args=[stream.pk])).content.decode()
    assert f'<span class="muted">@{member.username}</span>' in page
