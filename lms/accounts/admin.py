from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from lms.accounts.models import User
from lms.realtime import recheck_user_streams_on_commit


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "email", "role", "is_staff", "is_active")
    list_filter = ("role", "is_staff", "is_superuser", "is_active")
    search_fields = ("username", "display_name", "first_name", "last_name", "email")
    fieldsets = DjangoUserAdmin.fieldsets + (
        (_("Learning"), {"fields": ("role", "display_name", "timezone", "send_read_receipts")}),
    )
    add_fieldsets = DjangoUserAdmin.add_fieldsets + (
        (_("Learning"), {"fields": ("role", "display_name")}),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # A deactivated account keeps no live stream open.
            recheck_user_streams_on_commit(obj.pk)
