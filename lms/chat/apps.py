from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    name = "lms.chat"
    verbose_name = _("Chat")

    def ready(self) -> None:
        from lms.chat.access import can_read_room
        from lms.realtime import register_channel

        register_channel("room", can_read_room)
