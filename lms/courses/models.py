from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class CourseQuerySet(models.QuerySet):
    def for_member(self, user) -> "CourseQuerySet":
        """Courses `user` teaches or is enrolled in; every course for staff, none for anonymous."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        # Looked up by user, on indexed columns: joining both relations and then DISTINCT
        # would read every enrolment of a course to find one member.
        return self.filter(
            Q(pk__in=Course.instructors.through.objects.filter(user=user).values("course_id"))
            | Q(pk__in=Enrolment.objects.filter(user=user).values("course_id"))
        )

    def for_instructor(self, user) -> "CourseQuerySet":
        """Courses `user` teaches; every course for staff."""
        if not user.is_authenticated:
            return self.none()
        if user.is_staff:
            return self.all()
        return self.filter(instructors=user)


class Course(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    instructors = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="taught_courses", verbose_name=_("instructors")
    )
    students = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Enrolment",
        related_name="enrolled_courses",
        verbose_name=_("students"),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)

    objects = CourseQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("course")
        verbose_name_plural = _("courses")

    def __str__(self) -> str:
        return f"{self.code} {self.title}"


class Enrolment(models.Model):
    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, related_name="enrolments", verbose_name=_("course")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="enrolments",
        verbose_name=_("user"),
    )
    created = models.DateTimeField(_("enrolled"), auto_now_add=True)

    class Meta:
        ordering = ["course", "user"]
        verbose_name = _("enrolment")
        verbose_name_plural = _("enrolments")
        constraints = [
            models.UniqueConstraint(fields=["course", "user"], name="one_enrolment_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.course.code}"
