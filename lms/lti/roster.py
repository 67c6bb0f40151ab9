"""Fetching a course's roster from its platform's Names and Roles service."""

from lti_tool.services.nrps import fetch_member_data
from pylti1p3.exception import LtiException
from requests import RequestException

from lms.lti.actions import RosterChange, do_sync_roster
from lms.lti.models import LtiCourse


class RosterUnavailable(Exception):
    """The platform gave no roster: no Names and Roles service for the course, or it failed."""


def sync_roster(link: LtiCourse) -> RosterChange:
    """Fetch every page of the course's membership from the platform, then apply it."""
    context = link.lti_context
    if context is None or not context.memberships_url:
        raise RosterUnavailable("The platform offers no roster (Names and Roles service) for this course.")
    try:
        members = fetch_member_data(context)
    except (LtiException, RequestException, ValueError, KeyError) as error:
        raise RosterUnavailable(f"The platform's roster could not be fetched: {error}") from error
    return do_sync_roster(link, members=members)
