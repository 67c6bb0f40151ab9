from django.http import HttpResponse


def events(request):
    """Stand-in for URL reversing: lms.asgi serves this path before Django sees it."""
    return HttpResponse(
        "Event streams are served by the ASGI application (lms.asgi:application).\n",
        status=503,
        content_type="text/plain",
    )
