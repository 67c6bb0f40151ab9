"""Who and what an LTI platform's launches stand for here.

django-lti (`lti_tool`) keeps the platform's side: registrations, deployments, contexts and
their memberships. These two tables tie that side to ours: a platform person (issuer + `sub`)
to a local user, and a platform course (issuer + deployment + context id) to a `Course`.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class LtiIdentity(models.Model):
    issuer = models.CharField(_("issuer"), max_length=255)
    sub = models.CharField(_("subject"), max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lti_identities", verbose_name=_("user")
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("LTI identity")
        verbose_name_plural = _("LTI identities")
        constraints = [models.UniqueConstraint(fields=["issuer", "sub"], name="one_user_per_lti_sub")]

    def __str__(self) -> str:
        return f"{self.sub} @ {self.issuer}"


class LtiCourse(models.Model):
    issuer = models.CharField(_("issuer"), max_length=255)
    deployment_id = models.CharField(_("deployment ID"), max_length=255)
    context_id = models.CharField(_("context ID"), max_length=255)
    course = models.OneToOneField(
        "courses.Course", on_delete=models.CASCADE, related_name="lti_link", verbose_name=_("course")
    )
    # The platform's side of the course, for its Names and Roles (roster) endpoint.
    lti_context = models.ForeignKey(
        "lti_tool.LtiContext", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_synced = models.DateTimeField(_("roster last synced"), null=True, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("LTI course")
        verbose_name_plural = _("LTI courses")
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "deployment_id", "context_id"], name="one_course_per_lti_context"
            )
        ]

    def __str__(self) -> str:
        return f"{self.context_id} @ {self.issuer} ({self.deployment_id})"
