from django.contrib import admin

from lms.courses.models import Course, Enrolment


class EnrolmentInline(admin.TabularInline):
    model = Enrolment
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("code", "title", "created")
    search_fields = ("code", "title")
    filter_horizontal = ("instructors",)
    inlines = [EnrolmentInline]


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ("course", "user", "created")
    list_filter = ("course",)
    search_fields = ("user__username", "course__code")
    autocomplete_fields = ["course", "user"]

    def delete_model(self, request, obj):
        from lms.courses.actions import do_unenrol_user

        do_unenrol_user(obj.course, user=obj.user)

    def delete_queryset(self, request, queryset):
        from lms.courses.actions import do_unenrol_user

        for enrolment in queryset.select_related("course", "user"):
            do_unenrol_user(enrolment.course, user=enrolment.user)
