from django.contrib import admin

from lms.livestream.models import Recording, Stream, StreamViewer, ViewerSample


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "state", "starts_at", "ends_at", "peak_viewers")
    list_filter = ("state", "course")
    search_fields = ("title", "course__code")
    readonly_fields = ("state", "started_at", "ended_at", "peak_viewers", "chat_room")


@admin.register(StreamViewer)
class StreamViewerAdmin(admin.ModelAdmin):
    list_display = ("stream", "user", "first_seen")
    list_filter = ("stream__course",)
    raw_id_fields = ("stream", "user")


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ("stream", "file", "url", "added_by", "added")
    raw_id_fields = ("stream", "added_by")


@admin.register(ViewerSample)
class ViewerSampleAdmin(admin.ModelAdmin):
    list_display = ("stream", "minute", "viewers")
    raw_id_fields = ("stream",)
