from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from lms.accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "display_name", "email", "role", "is_staff", "is_active")
    list_filter = ("role", "is_staff", "is_superuser", "is_active")
    search_fields = ("username", "display_name", "first_name", "last_name", "email")
    fieldsets = DjangoUserAdmin.fieldsets + (
        (_("Learning"), {"fields": ("role", "display_name", "timezone")}),
    )
    add_fieldsets = DjangoUserAdmin.add_fieldsets + (
        (_("Learning"), {"fields": ("role", "display_name")}),
    )
