from django.contrib import admin

from lms.courses.models import Course, Enrolment
from lms.realtime import recheck_user_streams_on_commit


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

    # Edits here bypass the actions: whoever loses access must lose the course's live streams.
    def save_related(self, request, form, formsets, change):
        course = form.instance
        before = set(course.instructors.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        removed = before - set(course.instructors.values_list("pk", flat=True))
        for formset in formsets:
            removed |= {obj.user_id for obj in getattr(formset, "deleted_objects", [])}
        for user_id in removed:
            recheck_user_streams_on_commit(user_id)

    def delete_model(self, request, obj):
        self.delete_queryset(request, Course.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        members = set(Enrolment.objects.filter(course__in=queryset).values_list("user_id", flat=True))
        members |= set(queryset.values_list("instructors", flat=True)) - {None}
        super().delete_queryset(request, queryset)
        for user_id in members:
            recheck_user_streams_on_commit(user_id)


@admin.register(Enrolment)
class EnrolmentAdmin(admin.ModelAdmin):
    list_display = ("course", "user", "created")
    list_filter = ("course",)
    search_fields = ("user__username", "course__code")
    autocomplete_fields = ["course", "user"]

    def get_changeform_initial_data(self, request):
        # The autocomplete widgets look their initial ids up unchecked: "add" links may
        # preset them (?user=7), and anything but an id there (a word, a number past any
        # column) answered 500.
        initial = super().get_changeform_initial_data(request)
        return {k: v for k, v in initial.items() if k not in self.autocomplete_fields or _is_id(v)}


def _is_id(value) -> bool:
    return str(value).isascii() and str(value).isdecimal() and int(value) < 2**63

    def delete_model(self, request, obj):
        from lms.courses.actions import do_unenrol_user

        do_unenrol_user(obj.course, user=obj.user)

    def delete_queryset(self, request, queryset):
        from lms.courses.actions import do_unenrol_user

        for enrolment in queryset.select_related("course", "user"):
            do_unenrol_user(enrolment.course, user=enrolment.user)
