from django.contrib import admin

from lms.chat.models import Message, ModerationEntry, Mute, Notification, Reaction, ReadMarker, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "course", "created")
    list_filter = ("kind", "course")
    search_fields = ("name", "course__code")
    filter_horizontal = ("participants",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("pk", "room", "author", "created", "edited", "deleted")
    list_filter = ("room__course",)
    search_fields = ("body", "author__username")
    raw_id_fields = ("room", "author", "reply_to", "deleted_by")
    readonly_fields = ("body_html",)


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin):
    list_display = ("user", "course", "muted_by", "created", "until", "lifted")
    list_filter = ("course",)
    raw_id_fields = ("user", "muted_by", "lifted_by")


@admin.register(ModerationEntry)
class ModerationEntryAdmin(admin.ModelAdmin):
    list_display = ("created", "course", "actor", "action", "target")
    list_filter = ("course", "action")
    raw_id_fields = ("actor", "target", "room", "message")


@admin.register(ReadMarker)
class ReadMarkerAdmin(admin.ModelAdmin):
    list_display = ("room", "user", "last_read_id", "updated")
    raw_id_fields = ("room", "user")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "message", "created", "read_at")
    list_filter = ("kind",)
    raw_id_fields = ("user", "message")


@admin.register(Reaction)
class ReactionAdmin(admin.ModelAdmin):
    list_display = ("emoji", "user", "message", "created")
    list_filter = ("emoji",)
    raw_id_fields = ("user", "message")
