"""Who may sync a course's roster from its platform. The LTI app's only permission check."""

from django.shortcuts import get_object_or_404

from lms.courses.models import Course
from lms.lti.models import LtiCourse


def access_lti_course_to_sync(user, course_id: int) -> LtiCourse:
    """The platform link of a course `user` teaches. Missing, unlinked and forbidden all 404."""
    return get_object_or_404(
        LtiCourse.objects.select_related("course", "lti_context__deployment__registration"),
        course__in=Course.objects.for_instructor(user),
        course_id=course_id,
    )
