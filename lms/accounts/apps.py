from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "lms.accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from lms.accounts.actions import announce_course_online, announce_online
        from lms.realtime import register_channel
        from lms.realtime.coalesce import register_coalesced

        # A user's own channel: notifications, unread counts. Only that user may read it. Every
        # page opens it, so whether it has streams open says whether the user is online.
        register_channel("user", lambda user, pk: user.is_authenticated and user.pk == pk, on_presence=announce_online)
        register_coalesced("online", delay=0.5, run=announce_course_online)
