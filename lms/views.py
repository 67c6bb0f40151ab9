import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from lms.courses.models import Course
from lms.realtime import channel, event_stream_url

logger = logging.getLogger(__name__)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The user's courses (each leading to its chat and streams) and what is live now, which
    the page re-fetches when a stream in one of its courses starts or ends."""
    from django.db.models import Min, Q

    from lms.chat.models import Room
    from lms.livestream.models import Stream

    live = list(Stream.objects.for_member(request.user).live().select_related("course"))
    if request.htmx:
        return render(request, "home.html#live-now", {"live": live})
    courses = list(
        Course.objects.for_member(request.user)
        .prefetch_related("instructors")
        .annotate(first_room=Min("rooms__pk", filter=Q(rooms__kind=Room.Kind.COURSE)))
    )
    channels = [channel("user", request.user.pk)] + [channel("course", course.pk) for course in courses[:30]]
    context = {"courses": courses, "live": live, "stream_url": event_stream_url(channels)}
    return render(request, "home.html", context)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database (and Redis, when set) answer; 503 otherwise."""
    checks = {"database": _database_ok(), **({"redis": _redis_ok()} if settings.REDIS_URL else {})}
    ok = all(checks.values())
    body = {"status": "ok" if ok else "unavailable", **{k: "ok" if v else "down" for k, v in checks.items()}}
    response = JsonResponse(body, status=200 if ok else 503)
    # The check that failed has logged a warning: the 503 is the report, not a server error.
    response._has_been_logged = True
    return response


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.warning("Health check: the database does not answer.", exc_info=True)
        return False


def _redis_ok() -> bool:
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        logger.warning("Health check: Redis does not answer.")
        return False


# The error pages (lms/urls.py's handler400/403/404/500): the site's layout, one plain sentence,
# a way back. Django calls these only with DEBUG off.
def _error(request, status: int, heading: str, sentence: str) -> HttpResponse:
    context = {"status": status, "heading": heading, "sentence": sentence}
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    return _error(request, 400, _("That request could not be understood"),
                  _("The page was sent something it could not read. Go back and try again."))


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return _error(request, 403, _("You don't have access to this page"),
                  _("It belongs to a course you are not in, or to its instructors. If you should have access, ask your instructor."))


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return _error(request, 404, _("This page doesn't exist"),
                  _("The address may be mistyped, or what it pointed to was removed or is not shared with you."))


def server_error(request: HttpRequest) -> HttpResponse:
    """Drawn without the request: no context processor, session or database is asked again."""
    context = {"status": 500, "heading": _("Something went wrong on our side"),
               "sentence": _("It is not your fault and it has been logged. Try again in a moment.")}
    return HttpResponse(loader.get_template("error.html").render(context), status=500)
