from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "lms.realtime"
    verbose_name = "Realtime"
