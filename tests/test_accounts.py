"""lms.accounts: the user model, the time zone middleware, logging in and out, login throttling."""

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.signals import template_rendered
from django.utils import timezone

from lms.accounts.middleware import UserTimezoneMiddleware
from lms.accounts.models import User
from tests.factories import UserFactory

LOGIN_URL = "/accounts/login/"
BAD_LOGIN = "Please enter a correct username and password"
LOCKED_OUT = "Too many attempts"


@pytest.fixture(autouse=True)
def utc_afterwards():
    """The middleware activates zones for the current thread: leave none behind."""
    yield
    timezone.deactivate()


def log_in(client, username, password, **extra):
    return client.post(LOGIN_URL, {"username": username, "password": password}, **extra)


# The user model


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"display_name": "Ana S.", "first_name": "Ana", "last_name": "Souza"}, "Ana S."),
        ({"display_name": "", "first_name": "Ana", "last_name": "Souza"}, "Ana Souza"),
        ({"display_name": "", "first_name": "", "last_name": ""}, "ana"),
    ],
)
def test_user_name_falls_back_from_display_name_to_full_name_to_username(fields, name):
    user = User(username="ana", **fields)
    assert user.name == name
    assert str(user) == name


@pytest.mark.parametrize(
    ("role", "is_staff", "is_instructor"),
    [
        (User.Role.STUDENT, False, False),
        (User.Role.INSTRUCTOR, False, True),
        (User.Role.STUDENT, True, True),
    ],
)
def test_user_is_instructor_for_the_instructor_role_and_for_staff(role, is_staff, is_instructor):
    assert User(username="u", role=role, is_staff=is_staff).is_instructor is is_instructor


# The time zone middleware


def zone_seen_by_view(user) -> str:
    """The current time zone while a view runs for `user`, through the middleware."""
    request = RequestFactory().get("/")
    request.user = user
    middleware = UserTimezoneMiddleware(lambda request: HttpResponse(timezone.get_current_timezone_name()))
    return middleware(request).content.decode()


def test_timezone_middleware_activates_the_users_zone(db):
    assert zone_seen_by_view(UserFactory(timezone="Asia/Tokyo")) == "Asia/Tokyo"


def test_timezone_middleware_leaves_no_zone_behind_for_the_next_visitor(db):
    zone_seen_by_view(UserFactory(timezone="Asia/Tokyo"))
    assert zone_seen_by_view(AnonymousUser()) == settings.TIME_ZONE == "UTC"


def test_timezone_middleware_falls_back_to_utc_for_an_unknown_zone(db):
    zone_seen_by_view(UserFactory(timezone="Asia/Tokyo"))
    assert zone_seen_by_view(UserFactory(timezone="Mars/Olympus_Mons")) == "UTC"


def test_timezone_middleware_renders_pages_in_the_users_zone(client, member):
    member.timezone = "Asia/Tokyo"
    member.save(update_fields=["timezone"])
    client.force_login(member)
    zones = []

    def record(sender, **kwargs):
        zones.append(timezone.get_current_timezone_name())

    template_rendered.connect(record)
    try:
        response = client.get("/")
    finally:
        template_rendered.disconnect(record)
    assert response.status_code == 200
    assert zones and set(zones) == {"Asia/Tokyo"}


# Logging in and out


def test_login_page_shows_the_form(client):
    response = client.get(LOGIN_URL)
    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text


def test_login_with_the_right_password_signs_in_and_goes_home(client, member):
    response = log_in(client, "ana", "pw-for-tests")
    assert response.status_code == 302
    assert response.url == "/"
    assert client.session["_auth_user_id"] == str(member.pk)


def test_login_with_a_wrong_password_shows_an_error_and_keeps_the_username(client, member):
    response = log_in(client, "ana", "wrong")
    assert response.status_code == 200
    assert BAD_LOGIN in response.text
    assert 'value="ana"' in response.text
    assert "_auth_user_id" not in client.session


def test_logout_signs_out_and_goes_to_the_login_page(client, member):
    client.force_login(member)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.url == LOGIN_URL
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


# Throttling (django-axes)


def fail(client, username, times, **extra):
    return [log_in(client, username, "wrong", **extra).status_code for _ in range(times)]


def test_login_is_locked_after_five_failures_even_with_the_right_password(client, member):
    assert settings.AXES_FAILURE_LIMIT == 5
    assert fail(client, "ana", 4) == [200] * 4
    fail(client, "ana", 1)
    response = log_in(client, "ana", "pw-for-tests")
    assert response.status_code == 429
    assert LOCKED_OUT in response.text
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    assert 'name="password"' not in response.text
    assert "_auth_user_id" not in client.session


def test_login_lockout_looks_the_same_for_a_username_that_does_not_exist(client, member):
    assert fail(client, "ghost", 4) == fail(client, "ana", 4) == [200] * 4
    fail(client, "ghost", 1)
    fail(client, "ana", 1)
    ghost, real = log_in(client, "ghost", "pw-for-tests"), log_in(client, "ana", "pw-for-tests")
    assert ghost.status_code == real.status_code == 429
    assert [t.name for t in ghost.templates] == [t.name for t in real.templates]
    assert "registration/locked_out.html" in [t.name for t in ghost.templates]


def test_login_lockout_does_not_lock_another_username_from_the_same_address(client, member):
    UserFactory(username="ben")
    fail(client, "ana", 5)
    assert log_in(client, "ana", "pw-for-tests").status_code == 429
    response = log_in(client, "ben", "pw-for-tests")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(username="ben").pk)


def test_login_lockout_does_not_lock_the_same_username_from_another_address(client, member):
    fail(client, "ana", 5, REMOTE_ADDR="203.0.113.9")
    assert log_in(client, "ana", "pw-for-tests", REMOTE_ADDR="203.0.113.9").status_code == 429
    assert log_in(client, "ana", "pw-for-tests").status_code == 302
