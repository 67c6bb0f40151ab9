"""Sync every platform-linked course's roster (or the ones named) from Names and Roles."""

from django.core.management.base import BaseCommand, CommandError

from lms.lti.models import LtiCourse
from lms.lti.roster import RosterUnavailable, sync_roster


class Command(BaseCommand):
    help = "Enrol and unenrol the members of LTI-linked courses from their platform's roster."

    def add_arguments(self, parser):
        parser.add_argument("course_codes", nargs="*", help="Course codes; all linked courses when none.")

    def handle(self, *args, course_codes, **options):
        links = LtiCourse.objects.select_related("course", "lti_context__deployment__registration").order_by("pk")
        if course_codes:
            links = links.filter(course__code__in=course_codes)
            missing = set(course_codes) - set(links.values_list("course__code", flat=True))
            if missing:
                raise CommandError(f"Not linked to a platform: {', '.join(sorted(missing))}")
        failed = 0
        for link in links:
            try:
                change = sync_roster(link)
            except RosterUnavailable as error:
                failed += 1
                self.stderr.write(f"{link.course.code}: {error}")
                continue
            self.stdout.write(
                f"{link.course.code}: {change.enrolled} enrolled, {change.unenrolled} removed, "
                f"{change.instructors_added} instructors added, {change.instructors_removed} instructors removed"
            )
        if failed:
            raise CommandError(f"{failed} course(s) could not be synced.")
