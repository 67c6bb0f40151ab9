from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoursesConfig(AppConfig):
    name = "lms.courses"
    verbose_name = _("Courses")

    def ready(self) -> None:
        from lms.courses.access import is_course_member
        from lms.realtime import register_channel

        # Course-wide events (a stream starting, a new room): members of the course only.
        register_channel("course", is_course_member)
