"""The LTI 1.3 tool, end to end against a simulated platform (tests/lti_platform.py).

Every launch goes through the real views: OIDC login initiation, the platform's auth
endpoint's id_token, and the launch, which django-lti and pylti1p3 validate (the key is
fetched from the platform's JWKS over HTTP on 127.0.0.1).
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.core.management import call_command
from django.urls import reverse
from lti_tool.models import Key, LtiDeployment, LtiRegistration

from lms.accounts.models import User
from lms.chat.models import Room
from lms.courses.models import Course
from lms.lti.actions import Person, do_get_or_create_lti_course, do_get_or_create_lti_user, learns, teaches
from lms.lti.models import LtiCourse, LtiIdentity
from tests.factories import StreamFactory, UserFactory
from tests.lti_platform import INSTRUCTOR, LEARNER, LTI, ROLE, Platform, member, new_login_hint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def platform():
    platform = Platform().start()
    yield platform
    platform.stop()


@pytest.fixture
def registration(db, platform):
    key = Key.objects.generate()
    platform.tool_public_keys = [key.public_key]
    registration = LtiRegistration.objects.create(
        name="Simulated Moodle",
        issuer=platform.issuer,
        client_id=platform.client_id,
        auth_url=platform.auth_url,
        token_url=platform.token_url,
        keyset_url=platform.keyset_url,
    )
    LtiDeployment.objects.create(registration=registration, deployment_id=platform.deployment_id, is_active=True)
    return registration


def start_login(client, platform, registration, init_url: str = "") -> dict:
    """Steps 1 and 2: the platform starts the login; the tool sends the browser to /auth."""
    init_url = init_url or reverse("lti:init", args=[registration.uuid])
    params = {**platform.login_params(new_login_hint(), "http://testserver/lti/launch/"), "lti1p3_new_window": "1"}
    response = client.post(init_url, params)
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == platform.auth_url
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def launch(client, platform, registration, claims: dict, **token_options):
    """A whole launch: login initiation, then the signed id_token posted to the launch URL."""
    auth = start_login(client, platform, registration)
    token = platform.id_token(claims, nonce=auth["nonce"], **token_options)
    return client.post(urlsplit(auth["redirect_uri"]).path, {"id_token": token, "state": auth["state"]})


def course_room(course: Course) -> Room:
    return course.rooms.get(kind=Room.Kind.COURSE)


def test_student_launch_signs_in_creates_the_course_and_lands_in_its_chat(client, platform, registration):
    response = launch(client, platform, registration, platform.claims(sub="s-1", roles=LEARNER, name="Ana Lima"))

    link = LtiCourse.objects.get(issuer=platform.issuer, deployment_id="deployment-1", context_id="course-42")
    assert link.course.title == "Biology 101"
    assert response.status_code == 302
    assert response["Location"] == reverse("chat:room", args=[course_room(link.course).pk])
    user = LtiIdentity.objects.get(issuer=platform.issuer, sub="s-1").user
    assert user.name == "Ana Lima" and not user.has_usable_password()
    assert link.course.students.filter(pk=user.pk).exists()
    assert not link.course.instructors.filter(pk=user.pk).exists()
    page = client.get(response["Location"])
    assert page.status_code == 200 and page.wsgi_request.user == user


def test_login_url_without_the_registration_uuid_finds_it_by_issuer_and_client_id(client, platform, registration):
    auth = start_login(client, platform, registration, init_url=reverse("lti:init_any"))
    token = platform.id_token(platform.claims(sub="s-1"), nonce=auth["nonce"])
    response = client.post("/lti/launch/", {"id_token": token, "state": auth["state"]})
    assert response.status_code == 302 and response["Location"].startswith("/chat/")


def test_instructor_launch_teaches_the_course(client, platform, registration):
    launch(client, platform, registration, platform.claims(sub="t-1", roles=INSTRUCTOR, name="Ines Costa"))
    user = LtiIdentity.objects.get(sub="t-1").user
    course = LtiCourse.objects.get().course
    assert course.instructors.filter(pk=user.pk).exists()
    assert not course.students.filter(pk=user.pk).exists()
    assert user.role == User.Role.INSTRUCTOR


def test_context_administrator_teaches_and_short_role_names_count(client, platform, registration):
    launch(client, platform, registration, platform.claims(sub="a-1", roles=["Administrator"]))
    assert LtiCourse.objects.get().course.instructors.filter(lti_identities__sub="a-1").exists()


def test_users_are_keyed_by_issuer_and_sub_never_by_email(client, platform, registration):
    existing = UserFactory(username="ana", email="s-1@example.edu")
    launch(client, platform, registration, platform.claims(sub="s-1"))
    client.logout()
    launch(client, platform, registration, platform.claims(sub="s-1", name="Ana M. Lima"))
    identity = LtiIdentity.objects.get(sub="s-1")
    assert identity.user != existing
    assert LtiIdentity.objects.count() == 1
    assert identity.user.name == "Ana M. Lima"


def test_same_context_id_in_another_deployment_is_another_course(client, platform, registration):
    LtiDeployment.objects.create(registration=registration, deployment_id="deployment-2", is_active=True)
    launch(client, platform, registration, platform.claims(sub="s-1"))
    launch(client, platform, registration, platform.claims(sub="s-1", deployment_id="deployment-2"))
    assert LtiCourse.objects.filter(context_id="course-42").count() == 2


def test_launch_with_stream_custom_parameter_lands_on_the_stream(client, platform, registration):
    launch(client, platform, registration, platform.claims(sub="t-1", roles=INSTRUCTOR))
    stream = StreamFactory(course=LtiCourse.objects.get().course)
    response = launch(client, platform, registration, platform.claims(sub="s-1", custom={"stream": str(stream.pk)}))
    assert response["Location"] == reverse("livestream:detail", args=[stream.pk])


def refused(response, text: str) -> None:
    assert response.status_code == 403
    body = response.content.decode()
    assert 'id="lti-refusal"' in body and text in body
    assert "_auth_user_id" not in response.wsgi_request.session


def test_launch_from_an_unactivated_deployment_is_refused(client, platform, registration):
    response = launch(client, platform, registration, platform.claims(deployment_id="deployment-9"))
    refused(response, "deployment-9")
    assert not LtiCourse.objects.exists() and not Course.objects.exists()


def test_expired_id_token_is_refused(client, platform, registration):
    response = launch(client, platform, registration, platform.claims(), issued_at=1_700_000_000, lifetime=300)
    refused(response, "expired")
    assert not LtiIdentity.objects.exists()


def test_replayed_id_token_is_refused(client, platform, registration):
    auth = start_login(client, platform, registration)
    token = platform.id_token(platform.claims(sub="s-1"), nonce=auth["nonce"])
    first = client.post("/lti/launch/", {"id_token": token, "state": auth["state"]})
    assert first.status_code == 302
    replay = client.post("/lti/launch/", {"id_token": token, "state": auth["state"]})
    refused(replay, "already used")


def test_id_token_with_a_nonce_the_tool_never_issued_is_refused(client, platform, registration):
    auth = start_login(client, platform, registration)
    token = platform.id_token(platform.claims(), nonce="made-up-nonce")
    refused(client.post("/lti/launch/", {"id_token": token, "state": auth["state"]}), "Nonce")


def test_id_token_for_another_audience_is_refused(client, platform, registration):
    response = launch(client, platform, registration, platform.claims(aud="some-other-tool"))
    refused(response, "no registration here matches this platform and client ID")
    assert not LtiIdentity.objects.exists()


def test_id_token_signed_by_another_key_is_refused(client, platform, registration):
    impostor = Platform()  # same kid, another private key; never started
    auth = start_login(client, platform, registration)
    token = impostor.id_token(platform.claims(), nonce=auth["nonce"])
    impostor.server.server_close()
    refused(client.post("/lti/launch/", {"id_token": token, "state": auth["state"]}), "could not be verified")


def test_login_from_an_unregistered_platform_is_refused(client, platform, registration):
    params = {**platform.login_params("x", "http://testserver/lti/launch/"), "iss": "https://unknown.example",
              "lti1p3_new_window": "1"}
    response = client.post(reverse("lti:init", args=[registration.uuid]), params)
    assert response.status_code == 403 and b"not registered" in response.content


def test_login_in_an_iframe_first_checks_cookies_under_a_nonce_csp(client, platform, registration):
    params = platform.login_params(new_login_hint(), "http://testserver/lti/launch/")
    response = client.post(reverse("lti:init", args=[registration.uuid]), params)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    nonce = response.wsgi_request._csp_nonce
    assert f"'nonce-{nonce}'" in csp and "unsafe-inline" not in csp
    assert f'<script nonce="{nonce}">'.encode() in response.content
    assert b"lti1p3_new_window" in response.content
    assert b"style=" not in response.content  # style attributes would break the CSP
    assert "X-Frame-Options" not in response


def test_jwks_publishes_the_tool_key(client, registration):
    keys = client.get(reverse("lti:jwks")).json()["keys"]
    assert keys and {key["kty"] for key in keys} == {"RSA"}


def deep_link_claims(platform, roles=INSTRUCTOR):
    return platform.claims(sub="t-1", roles=roles, message_type="LtiDeepLinkingRequest")


def test_instructor_places_a_livestream_through_deep_linking(client, platform, registration):
    launch(client, platform, registration, platform.claims(sub="t-1", roles=INSTRUCTOR))
    stream = StreamFactory(course=LtiCourse.objects.get().course, title="Week 3 lecture")

    response = launch(client, platform, registration, deep_link_claims(platform))
    assert response["Location"] == reverse("lti:deep_link")
    picker = client.get(reverse("lti:deep_link"))
    assert b"Week 3 lecture" in picker.content and b"Course chat" in picker.content

    response = client.post(reverse("lti:deep_link"), {"target": f"stream-{stream.pk}"})
    body = response.content.decode()
    assert f'action="{platform.url}/deep-link-return"' in body
    assert platform.url in response["Content-Security-Policy"].split("form-action")[1].split(";")[0]
    token = body.split('name="JWT" value="')[1].split('"')[0]
    message = jwt.decode(token, platform.tool_public_keys[0], algorithms=["RS256"], audience=platform.issuer)
    assert message[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert message[LTI + "deployment_id"] == "deployment-1"
    assert message["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-platform-data"
    [item] = message["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["type"] == "ltiResourceLink"
    assert item["url"] == "http://testserver/lti/launch/"
    assert item["title"] == "Week 3 lecture" and item["custom"] == {"stream": str(stream.pk)}


def test_deep_linking_the_course_chat(client, platform, registration):
    launch(client, platform, registration, deep_link_claims(platform))
    response = client.post(reverse("lti:deep_link"), {"target": "chat"})
    token = response.content.decode().split('name="JWT" value="')[1].split('"')[0]
    [item] = jwt.decode(token, options={"verify_signature": False})[
        "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
    ]
    assert item["title"] == "Course chat" and not item["custom"]


def test_students_cannot_deep_link(client, platform, registration):
    response = launch(client, platform, registration, deep_link_claims(platform, roles=LEARNER))
    assert response.status_code == 403
    assert client.get(reverse("lti:deep_link")).status_code == 403


def test_deep_link_page_needs_a_deep_linking_launch(client, platform, registration):
    launch(client, platform, registration, platform.claims(sub="t-1", roles=INSTRUCTOR))
    assert client.post(reverse("lti:deep_link"), {"target": "chat"}).status_code == 403


@pytest.fixture
def synced_course(client, platform, registration):
    """A course an instructor launched, with a student who has launched once."""
    launch(client, platform, registration, platform.claims(sub="gone", roles=LEARNER))
    client.logout()
    launch(client, platform, registration, platform.claims(sub="t-1", roles=INSTRUCTOR, name="Ines Costa"))
    return LtiCourse.objects.get()


def test_roster_sync_enrols_new_members_and_unenrols_removed_ones(synced_course, platform, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    course = synced_course.course
    local = UserFactory(username="local-guest")
    course.enrolments.create(user=local)
    gone = LtiIdentity.objects.get(sub="gone").user
    platform.rosters["course-42"] = [
        member("t-1", INSTRUCTOR, name="Ines Costa"),
        member("s-2", LEARNER, name="Bo Chen"),
        member("s-3", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"], name="Cy Dube"),
        member("t-2", ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]),
        member("s-4", LEARNER, status="Inactive"),
    ]
    rechecked = []
    monkeypatch.setattr("lms.courses.actions.recheck_user_streams_on_commit", rechecked.append)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("sync_lti_rosters")

    students = set(course.students.values_list("lti_identities__sub", flat=True))
    assert students == {"s-2", "s-3", None}  # None: the local guest, who did not come from the platform
    assert set(course.instructors.values_list("lti_identities__sub", flat=True)) == {"t-1", "t-2"}
    assert rechecked == [gone.pk]  # the removed member's open streams are ended
    assert LtiIdentity.objects.get(sub="s-2").user.name == "Bo Chen"
    assert platform.token_requests >= 1  # 3 pages of 2 members, one token
    synced_course.refresh_from_db()
    assert synced_course.last_synced is not None


def test_sync_button_is_on_the_course_page_for_its_instructors(client, synced_course, platform):
    course = synced_course.course
    page = client.get(reverse("chat:moderation", args=[course.pk]))
    assert reverse("lti:roster_sync", args=[course.pk]).encode() in page.content

    platform.rosters["course-42"] = [member("t-1", INSTRUCTOR), member("s-9", LEARNER)]
    response = client.post(reverse("lti:roster_sync", args=[course.pk]), follow=True)
    assert b"Roster synced: 1 enrolled, 1 removed" in response.content
    assert set(course.students.values_list("lti_identities__sub", flat=True)) == {"s-9"}


def test_students_cannot_sync_the_roster(client, synced_course, platform, registration):
    client.logout()
    launch(client, platform, registration, platform.claims(sub="s-5"))
    response = client.post(reverse("lti:roster_sync", args=[synced_course.course_id]))
    assert response.status_code == 404


def test_roster_sync_that_the_platform_refuses_says_so(client, synced_course, platform, caplog):
    platform.tool_public_keys = []  # the platform no longer accepts the tool's key
    response = client.post(reverse("lti:roster_sync", args=[synced_course.course_id]), follow=True)
    assert b"roster could not be fetched" in response.content
    assert LtiIdentity.objects.get(sub="gone").user.enrolled_courses.exists()  # nothing removed
    assert not [record for record in caplog.records if record.levelname == "ERROR"]


def production_settings(**env: str) -> dict:
    """The settings a production process (DEBUG off) reads from `env`."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); print(json.dumps(["
        "settings.SECURE_CSP['frame-ancestors'], settings.SESSION_COOKIE_SAMESITE, settings.CSRF_COOKIE_SAMESITE]))"
    )
    base = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "lms.settings", "SECRET_KEY": "x" * 60}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    frame_ancestors, session_samesite, csrf_samesite = json.loads(result.stdout)
    return {"frame-ancestors": frame_ancestors, "session": session_samesite, "csrf": csrf_samesite}


def test_csp_lets_only_the_configured_platforms_frame_the_app():
    framed = production_settings(LTI_FRAME_ANCESTORS="https://moodle.example.edu, https://u.instructure.com")
    assert framed == {"frame-ancestors": ["https://moodle.example.edu", "https://u.instructure.com"],
                      "session": "None", "csrf": "None"}
    assert production_settings() == {"frame-ancestors": ["'none'"], "session": "Lax", "csrf": "Lax"}


def test_a_learner_launch_ends_teaching_the_course(client, platform, registration):
    launch(client, platform, registration, platform.claims(sub="t-1", roles=INSTRUCTOR))
    course = LtiCourse.objects.get().course
    launch(client, platform, registration, platform.claims(sub="t-1", roles=LEARNER))
    user = LtiIdentity.objects.get(sub="t-1").user
    assert not course.instructors.filter(pk=user.pk).exists()
    assert course.students.filter(pk=user.pk).exists()


def test_roles_in_every_spelling_platforms_send():
    assert teaches(["Instructor"]) and teaches([ROLE + "Administrator"])
    assert teaches([ROLE.removesuffix("#") + "/Instructor#TeachingAssistant"])
    assert learns(["Learner"]) and learns([ROLE.removesuffix("#") + "/Learner#NonCreditLearner"])
    institution = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
    assert not teaches([institution + "Instructor", institution + "Administrator"])
    assert not teaches(LEARNER) and not learns(INSTRUCTOR) and not learns([ROLE + "Mentor"])


def stale_once(monkeypatch, manager, method: str) -> None:
    """The first lookup misses a row, as a request racing another first launch would."""
    real = getattr(manager, method)
    calls = []

    def lookup(*args, **kwargs):
        queryset = real(*args, **kwargs)
        calls.append(1)
        return queryset.none() if len(calls) == 1 else queryset

    monkeypatch.setattr(manager, method, lookup)


def test_two_first_launches_at_once_share_one_user_and_one_course(db, monkeypatch):
    issuer, person = "https://moodle.example.edu", Person(sub="s-1")
    user = do_get_or_create_lti_user(issuer, person)
    course = do_get_or_create_lti_course(issuer, deployment_id="1", context_id="7", title="Bio", label="BIO")
    stale_once(monkeypatch, LtiIdentity.objects, "select_related")
    stale_once(monkeypatch, LtiCourse.objects, "select_for_update")
    assert do_get_or_create_lti_user(issuer, person) == user
    assert do_get_or_create_lti_course(issuer, deployment_id="1", context_id="7", title="Bio", label="BIO") == course
    assert LtiIdentity.objects.count() == 1 and LtiCourse.objects.count() == 1


def test_migrations_give_the_tool_a_signing_key_once(db):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("lms.lti.migrations.0002_signing_key")
    Key.objects.all().delete()
    migration.create_first_key(apps, None)
    migration.create_first_key(apps, None)
    [key] = Key.objects.all()
    assert key.is_active and "PRIVATE KEY" in key.private_key
