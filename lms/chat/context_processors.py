def notifications(request):
    """The unread notifications count for the navigation badge (one query per page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from lms.chat.models import Notification

    return {"notification_count": Notification.objects.filter(user=user).unread().count()}
