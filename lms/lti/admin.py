from django.contrib import admin

from lms.lti.models import LtiCourse, LtiIdentity


@admin.register(LtiIdentity)
class LtiIdentityAdmin(admin.ModelAdmin):
    list_display = ["user", "issuer", "sub", "created"]
    search_fields = ["user__username", "sub", "issuer"]
    raw_id_fields = ["user"]


@admin.register(LtiCourse)
class LtiCourseAdmin(admin.ModelAdmin):
    list_display = ["course", "issuer", "deployment_id", "context_id", "last_synced"]
    search_fields = ["course__code", "context_id", "issuer"]
    raw_id_fields = ["course", "lti_context"]
