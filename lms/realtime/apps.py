from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "lms.realtime"
    verbose_name = "Realtime"

    def ready(self) -> None:
        from lms.realtime import sessions

        sessions.connect()
