"""Django's admin for every model of the project: registered, and every page opens."""

from io import StringIO

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LMS_MODELS = [m for m in apps.get_models() if m.__module__.startswith("lms.")]


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def staff(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def test_every_model_of_the_project_is_in_the_admin():
    assert LMS_MODELS
    assert [m._meta.label for m in LMS_MODELS if m not in admin.site._registry] == []


def test_admin_passes_the_admin_system_checks():
    assert admin.site.check(None) == []


@pytest.mark.parametrize("model", LMS_MODELS, ids=lambda model: model._meta.label)
def test_admin_pages_open_for_staff(client, staff, model, django_capture_on_commit_callbacks):
    call_command("create_sample_data", stdout=StringIO())
    from lms.chat.actions import do_delete_message, do_mute_member
    from lms.chat.models import Message
    from lms.courses.models import Course

    # Content for the models sample data leaves empty (moderation).
    course = Course.objects.get(code="BIO101")
    message = Message.objects.filter(room__course=course).last()
    with django_capture_on_commit_callbacks(execute=True):  # stored events and their copies too
        do_delete_message(message, actor=course.instructors.first())
    do_mute_member(course, actor=course.instructors.first(), user=course.students.first(), until=None)
    # A platform person and course, as an LTI launch leaves them.
    from lms.lti.actions import Person, do_get_or_create_lti_course, do_get_or_create_lti_user

    do_get_or_create_lti_user("https://moodle.example.edu", Person(sub="42", name="Ana Lima"))
    do_get_or_create_lti_course(
        "https://moodle.example.edu", deployment_id="1", context_id="7", title="Biology", label="BIO"
    )

    client.force_login(staff)
    obj = model.objects.first()
    assert obj is not None, f"no {model._meta.label} to open"
    urls = [admin_url(model, "changelist"), admin_url(model, "change", obj.pk)]
    if admin.site._registry[model].has_add_permission(type("Request", (), {"user": staff})()):
        urls.append(admin_url(model, "add"))  # kept by actions only (stored copies): no add page
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("model", LMS_MODELS, ids=lambda model: model._meta.label)
def test_admin_sends_non_staff_to_the_admin_login(client, member, model):
    client.force_login(member)
    url = admin_url(model, "changelist")
    response = client.get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={url}"
