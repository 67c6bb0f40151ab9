from django.contrib import admin

from lms.realtime.models import StoredCopy


@admin.register(StoredCopy)
class StoredCopyAdmin(admin.ModelAdmin):
    """Which stored events show which object (read-only: actions keep these rows)."""

    list_display = ("channel", "eid", "key", "source", "created")
    search_fields = ("key", "channel")
    list_filter = ("created",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
