from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    name = "lms.chat"
    verbose_name = _("Chat")

    def ready(self) -> None:
        from lms.chat.access import can_read_room
        from lms.chat.actions import (
            REACTIONS_DELAY,
            RECEIPTS_DELAY,
            TYPING_SECONDS,
            announce_reactions,
            announce_receipts,
            announce_room_presence,
            announce_typing,
            render_stored_message,
            render_stored_summary,
            widen_read_range,
        )
        from lms.realtime import register_channel, register_source
        from lms.realtime.coalesce import register_coalesced
        from lms.realtime.ephemeral import register_ephemeral

        # Who has the room open is pushed at most once a second, from the open streams.
        register_channel("room", can_read_room, on_presence=announce_room_presence)
        register_ephemeral("typing", ttl=TYPING_SECONDS, on_change=announce_typing)
        register_coalesced("receipts", delay=RECEIPTS_DELAY, run=announce_receipts, merge=widen_read_range)
        # Stored events that show a message are rendered again when it is edited or deleted.
        register_source("chat_message", render_stored_message)
        register_source("chat_summary", render_stored_summary)
        register_coalesced("reactions", delay=REACTIONS_DELAY, run=announce_reactions)
