"""The LTI 1.3 endpoints: login initiation, launch, deep linking and the roster button.

django-lti and pylti1p3 do the protocol (the OIDC redirect, the id_token's signature, issuer,
audience, deployment, nonce and expiry, the deep-linking response JWT, Names and Roles); these
views only decide what a valid launch means here.
"""

import logging
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csp import get_nonce
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.csp import CSP
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views import View
from django.views.decorators.http import require_POST
from lti_tool.constants import SESSION_KEY
from lti_tool.utils import DjangoToolConfig, get_launch_from_request
from lti_tool.views import LtiLaunchBaseView, OIDCLoginInitView
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoOIDCLogin
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, OIDCException

from lms.chat.models import Room
from lms.livestream.models import Stream
from lms.lti.access import access_lti_course_to_sync
from lms.lti.actions import Person, do_apply_lti_roles, do_get_or_create_lti_course, do_get_or_create_lti_user, teaches
from lms.lti.models import LtiCourse
from lms.lti.roster import RosterUnavailable, sync_roster

logger = logging.getLogger(__name__)


def _refuse(request, reason: str, *, status: int = 403) -> HttpResponse:
    """A refused launch: a page that says why, never a traceback."""
    logger.warning("LTI launch refused: %s", reason)
    return render(request, "lti/error.html", {"reason": reason}, status=status)


def _policy(**directives) -> dict:
    return {**settings.SECURE_CSP, **directives}


@method_decorator(xframe_options_exempt, name="dispatch")
class LoginInitView(OIDCLoginInitView):
    """Step 1: the platform sends the browser here; we send it to the platform's auth URL.

    Inside an iframe whose browser blocks third-party cookies, pylti1p3's check page offers
    to continue in a new window. That page is the library's, with an inline script: it gets
    this response's CSP nonce.
    """

    main_msg = gettext_lazy("Your browser blocks cookies inside the course page. Open Course live in a new window to go on.")
    click_msg = gettext_lazy("Open in a new window")
    loading_msg = gettext_lazy("Loading…")

    def get_oidc_response(self, request, registration_uuid, params):
        try:
            tool_conf = DjangoToolConfig(registration_uuid)
            oidc_login = DjangoOIDCLogin(request, tool_conf, launch_data_storage=DjangoCacheDataStorage())
            target_link_uri = params.get("target_link_uri")
            if not target_link_uri:
                return _refuse(request, _("The platform sent no target_link_uri."), status=400)
            response = oidc_login.enable_check_cookies(self.main_msg, self.click_msg, self.loading_msg).redirect(
                self.get_redirect_url(target_link_uri)
            )
        except (LtiException, OIDCException) as error:
            return _refuse(request, _("This platform is not registered here: %s") % error)
        if response.status_code == 200 and b"<script" in response.content:
            nonce = str(get_nonce(request))
            response.content = (
                response.content.replace(b'<script type="text/javascript">', f'<script nonce="{nonce}">'.encode())
                .replace(b'<style type="text/css">', f'<style nonce="{nonce}">'.encode())
                # Style attributes take no nonce: hide the two messages with `hidden` instead.
                .replace(b' style="display: none;">', b" hidden>")
            )
            response._csp_config = _policy(**{"script-src": [CSP.SELF, CSP.NONCE], "style-src": [CSP.SELF, CSP.NONCE]})
        return response

    def get_redirect_url(self, target_link_uri: str) -> str:
        # Launches come back to our own launch URL, whatever the platform asked for.
        return self.request.build_absolute_uri(reverse("lti:launch"))


@method_decorator(xframe_options_exempt, name="dispatch")
class LaunchView(LtiLaunchBaseView):
    """Step 2: the platform posts the signed id_token; a valid one signs the person in."""

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        except LtiException as error:
            if str(error) == "Registration not found.":  # no registration for this iss + aud
                error = _("no registration here matches this platform and client ID (the token's audience).")
            return _refuse(request, _("The launch could not be verified: %s") % error)
        except ReplayedLaunch:
            return _refuse(request, _("This launch was already used. Open the tool again from your course."))

    def launch_setup(self, request, lti_launch) -> None:
        # pylti1p3 checks that the nonce is one we issued, but not that it is used only once.
        claims = lti_launch.get_launch_data()
        ttl = max(int(claims.get("exp", 0)) - int(time.time()), 0) + 300
        if not cache.add(f"lti-nonce-used:{claims['iss']}:{claims['nonce']}", 1, timeout=ttl):
            raise ReplayedLaunch

    def handle_inactive_deployment(self, request, lti_launch):
        deployment_id = lti_launch.get_claim("https://purl.imsglobal.org/spec/lti/claim/deployment_id")
        return _refuse(
            request,
            _("This deployment (%(id)s) of the platform is not activated here. Ask an administrator to activate it.")
            % {"id": deployment_id},
        )

    def _sign_in(self, request, lti_launch):
        claims = lti_launch.get_launch_data()
        issuer = claims["iss"]
        person = Person(
            sub=str(claims["sub"]),
            name=claims.get("name") or "",
            given_name=claims.get("given_name") or "",
            family_name=claims.get("family_name") or "",
            email=claims.get("email") or "",
        )
        context = lti_launch.context_claim or {}
        if not context.get("id"):
            return None, None, _("The launch names no course (context).")
        user = do_get_or_create_lti_user(issuer, person)
        course = do_get_or_create_lti_course(
            issuer,
            deployment_id=lti_launch.deployment.deployment_id,
            context_id=str(context["id"]),
            title=context.get("title") or "",
            label=context.get("label") or "",
            lti_context=lti_launch.context,
        )
        do_apply_lti_roles(course, user=user, roles=lti_launch.roles_claim or [])
        launch_id = request.session.get(SESSION_KEY)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        request.session[SESSION_KEY] = launch_id
        return user, course, None

    def handle_resource_launch(self, request, lti_launch):
        user, course, problem = self._sign_in(request, lti_launch)
        if problem:
            return _refuse(request, problem)
        stream_id = lti_launch.get_custom_claim("stream")
        if stream_id and str(stream_id).isdigit():
            stream = Stream.objects.filter(pk=int(stream_id), course=course).first()
            if stream is not None:
                return HttpResponseRedirect(reverse("livestream:detail", args=[stream.pk]))
        room = course.rooms.filter(kind=Room.Kind.COURSE).order_by("pk").first()
        return HttpResponseRedirect(reverse("chat:room", args=[room.pk]))

    def handle_deep_linking_launch(self, request, lti_launch):
        user, course, problem = self._sign_in(request, lti_launch)
        if problem:
            return _refuse(request, problem)
        if not teaches(lti_launch.roles_claim or []):
            return _refuse(request, _("Only the course's instructors can add Course live to it."))
        return redirect("lti:deep_link")


class ReplayedLaunch(Exception):
    pass


def _deep_link_launch(request):
    """The deep-linking launch this session came from, if it still is one."""
    launch_id = request.session.get(SESSION_KEY)
    if not launch_id:
        return None
    try:
        launch = get_launch_from_request(request, launch_id)
    except LtiException:
        return None
    return launch if launch.is_deep_link_launch else None


@method_decorator(xframe_options_exempt, name="dispatch")
@method_decorator(login_required, name="dispatch")
class DeepLinkView(View):
    """Step 3 of "add activity": the instructor picks the course chat or one livestream, and
    the platform gets a signed link to it."""

    def _context(self, request):
        launch = _deep_link_launch(request)
        if launch is None:
            return None, None
        context = launch.context_claim or {}
        link = LtiCourse.objects.select_related("course").filter(
            issuer=launch.get_claim("iss"),
            deployment_id=launch.deployment.deployment_id,
            context_id=str(context.get("id", "")),
        ).first()
        if link is None or not link.course.instructors.filter(pk=request.user.pk).exists():
            return None, None
        return launch, link.course

    def get(self, request):
        launch, course = self._context(request)
        if launch is None:
            return _refuse(request, _("Start from your course's \"add activity\" page on the platform."))
        streams = Stream.objects.filter(course=course).order_by("-pk")[:50]
        return render(request, "lti/deep_link.html", {"course": course, "streams": streams})

    def post(self, request):
        launch, course = self._context(request)
        if launch is None:
            return _refuse(request, _("Start from your course's \"add activity\" page on the platform."))
        launch_url = request.build_absolute_uri(reverse("lti:launch"))
        choice = request.POST.get("target", "chat")
        resource = DeepLinkResource().set_url(launch_url)
        if choice.startswith("stream-") and choice[7:].isdigit():
            stream = Stream.objects.filter(pk=int(choice[7:]), course=course).first()
            if stream is None:
                return _refuse(request, _("That livestream is not in this course."), status=404)
            resource.set_title(stream.title).set_custom_params({"stream": str(stream.pk)})
        else:
            resource.set_title(_("Course chat"))
        message = launch.get_message_launch().get_deep_link()
        return_url = launch.get_message_launch().get_launch_data()[
            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
        ]["deep_link_return_url"]
        token = message.get_response_jwt([resource])
        parts = urlsplit(return_url)
        response = render(request, "lti/deep_link_return.html", {"return_url": return_url, "jwt": token})
        response._csp_config = _policy(
            **{"form-action": [CSP.SELF, f"{parts.scheme}://{parts.netloc}"], "script-src": [CSP.SELF, CSP.NONCE]}
        )
        return response


@require_POST
@login_required
def roster_sync(request, course_id: int):
    """The course page's "Sync roster" button, for the course's instructors."""
    link = access_lti_course_to_sync(request.user, course_id)
    try:
        change = sync_roster(link)
    except RosterUnavailable as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Roster synced: %(enrolled)d enrolled, %(unenrolled)d removed, %(added)d instructors added, %(removed)d instructors removed.")
            % {
                "enrolled": change.enrolled,
                "unenrolled": change.unenrolled,
                "added": change.instructors_added,
                "removed": change.instructors_removed,
            },
        )
    return redirect("chat:moderation", link.course_id)
