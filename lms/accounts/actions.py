"""Every write that concerns people themselves."""

import uuid

from django.db import transaction
from django.utils import timezone

from lms.accounts.models import User
from lms.realtime import channel, publish_fragment_on_commit


@transaction.atomic
def do_announce(user: User, *, text: str) -> None:
    """Push a one-line announcement to every open page of `user` (shown on their home page)."""
    announcement = {"id": uuid.uuid4().hex, "text": text, "sent": timezone.now()}
    publish_fragment_on_commit(
        channel("user", user.pk), "announcement", "home.html#announcement", {"announcement": announcement}
    )
