def notifications(request):
    """The unread notifications count for the navigation badge (one query per page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from lms.chat.models import Notification

    return {"notification_count": Notification.objects.filter(user=user).unread().count()}


def unread(request):
    """The unread counts the page starts from (`base.html#unread-state`), read only if the page
    shows them."""
    from django.utils.functional import SimpleLazyObject

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from lms.chat.receipts import unread_state

    return {"unread": SimpleLazyObject(lambda: unread_state(user))}
