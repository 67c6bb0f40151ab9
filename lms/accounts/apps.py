from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "lms.accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from lms.realtime import register_channel

        # A user's own channel: notifications, unread counts. Only that user may read it.
        register_channel("user", lambda user, pk: user.is_authenticated and user.pk == pk)
