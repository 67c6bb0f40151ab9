"""Who may open an event stream, and on which channels. Runs in a worker thread."""

from importlib import import_module

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from lms.realtime.channels import can_read_channel


def user_from_session(session_key: str | None):
    """The signed-in user for a session cookie, checked as Django's auth middleware does."""
    if not session_key:
        return AnonymousUser()
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return auth.get_user(request)


def refused_channels(user_or_id, channels: list[str]) -> list[str]:
    """The channels of `channels` that the user may not read."""
    user = user_or_id
    if isinstance(user_or_id, int):
        user = auth.get_user_model().objects.filter(pk=user_or_id, is_active=True).first()
        user = user or AnonymousUser()
    return [name for name in channels if not can_read_channel(user, name)]


def stream_refusal(user_id: int, session_key: str | None, channels: list[str]) -> tuple[bool, list[str]]:
    """Whether an open stream's session still signs in its user (it ends on logout, on a
    password change elsewhere, or when it expires), and which channels the user may no
    longer read."""
    if session_key is not None:
        user = user_from_session(session_key)
        if user.pk != user_id:
            return False, []
    return True, refused_channels(user_id, channels)
