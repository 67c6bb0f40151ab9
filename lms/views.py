import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from lms.courses.models import Course
from lms.realtime import channel, event_stream_url

logger = logging.getLogger(__name__)


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    stream_url = event_stream_url([channel("user", request.user.pk)])
    courses = Course.objects.for_member(request.user).prefetch_related("instructors")
    return render(request, "home.html", {"courses": courses, "stream_url": stream_url})


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
