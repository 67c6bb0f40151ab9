"""Project-wide request checks that belong to no app."""

from django.http import HttpResponseBadRequest


def reject_nul_in_path(get_response):
    """A NUL byte in the path or the query string is 400: no URL or search of ours takes one,
    and PostgreSQL cannot compare a string holding one (a path parameter looked up as is, like a
    calendar token, or a search box's words, raised a DataError and answered 500). Form fields
    refuse NUL bytes themselves."""

    def middleware(request):
        if "\x00" in request.path_info or any("\x00" in value for _, values in request.GET.lists() for value in values):
            return HttpResponseBadRequest("Malformed request.\n", content_type="text/plain; charset=utf-8")
        return get_response(request)

    return middleware
