import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from lms import ratelimit
from lms.accounts.actions import do_regenerate_calendar_token, do_revoke_calendar_token, do_update_profile
from lms.accounts.forms import ProfileForm
from lms.accounts.models import User
from lms.livestream.calendar import calendar_for

MIN_CALENDAR_TOKEN_LENGTH = 20


@require_http_methods(["GET", "POST"])
@login_required
@never_cache  # the page shows the secret feed URL
def profile(request):
    user = request.user
    calendar_action = request.POST.get("calendar") if request.method == "POST" else None
    if calendar_action == "new":
        had_one = bool(user.calendar_token)
        do_regenerate_calendar_token(user)
        messages.success(
            request, _("New feed link made. The old one no longer works.") if had_one else _("Your feed link is ready.")
        )
        return redirect("profile")
    if calendar_action == "off":
        do_revoke_calendar_token(user)
        messages.success(request, _("The calendar feed is off. Its link no longer works."))
        return redirect("profile")

    # A copy, so that a rejected form doesn't show its typed values as the user's (in the nav).
    form = ProfileForm(request.POST or None, instance=User.objects.get(pk=user.pk))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        do_update_profile(
            user,
            display_name=data["display_name"],
            time_zone=data["timezone"],
            send_read_receipts=data["send_read_receipts"],
        )
        messages.success(request, _("Your profile is saved."))
        return redirect("profile")
    feed_url = (
        request.build_absolute_uri(reverse("calendar_feed", args=[user.calendar_token])) if user.calendar_token else ""
    )
    return render(request, "accounts/profile.html", {"form": form, "feed_url": feed_url})


def _user_for_calendar_token(token: str) -> User:
    """The active user whose feed URL carries `token`; 404 for anything else, revoked tokens included."""
    if not MIN_CALENDAR_TOKEN_LENGTH <= len(token) <= User._meta.get_field("calendar_token").max_length:
        raise Http404
    user = User.objects.filter(calendar_token=token, is_active=True).first()
    # The lookup finds the row; the exact, constant-time comparison decides (a case-insensitive
    # database collation must not let a near miss through).
    if user is None or not secrets.compare_digest(user.calendar_token.encode(), token.encode()):
        raise Http404
    return user


@require_safe
def calendar_feed(request, token: str):
    # No login: calendar apps send no cookie. The unguessable token in the URL is the credential.
    if wait := ratelimit.check_address("calendar", request):
        return HttpResponse(status=429, headers={"Retry-After": str(wait)})
    user = _user_for_calendar_token(token)
    response = HttpResponse(calendar_for(user, request), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="course-live.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
