from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LivestreamConfig(AppConfig):
    name = "lms.livestream"
    verbose_name = _("Livestreams")

    def ready(self) -> None:
        from lms.livestream.access import can_manage_stream, can_watch_stream
        from lms.livestream.actions import do_record_viewer_count
        from lms.realtime import register_channel

        # Viewers: counted across processes, announced at most once a second per stream.
        register_channel("stream", can_watch_stream, on_occupancy=do_record_viewer_count)
        register_channel("stream_manage", can_manage_stream)
