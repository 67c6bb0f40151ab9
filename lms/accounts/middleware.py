import zoneinfo

from django.utils import timezone
from django.utils.deprecation import MiddlewareMixin


class UserTimezoneMiddleware(MiddlewareMixin):
    """Show times in the signed-in user's time zone; store them in UTC."""

    def process_request(self, request) -> None:
        user = getattr(request, "user", None)
        name = getattr(user, "timezone", None) if user is not None and user.is_authenticated else None
        try:
            timezone.activate(zoneinfo.ZoneInfo(name)) if name else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
