"""Every write the LTI tool makes: people, courses and enrolments from launches and rosters."""

import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from lti_tool.lti_core.utils import normalize_role

from lms.accounts.models import User
from lms.chat.models import Room
from lms.courses.actions import do_enrol_user, do_remove_instructor, do_unenrol_user
from lms.courses.models import Course
from lms.lti.models import LtiCourse, LtiIdentity

CHAT_ROOM_NAME = "General"


@dataclass(frozen=True)
class Person:
    """One platform person, as a launch or a roster describes them."""

    sub: str
    name: str = ""
    given_name: str = ""
    family_name: str = ""
    email: str = ""


def _context_role(role: str) -> str:
    """`Instructor` for `Instructor`, `…/membership#Instructor` and the sub-role
    `…/membership/Instructor#TeachingAssistant`; '' for roles outside the context."""
    role = normalize_role(role)
    base = "http://purl.imsglobal.org/vocab/lis/v2/membership"
    if role.startswith(base + "#"):
        return role.removeprefix(base + "#")
    if role.startswith(base + "/"):
        return role.removeprefix(base + "/").split("#")[0]
    return ""


def teaches(roles: list[str]) -> bool:
    """An Instructor or Administrator of the context (sub-roles included) teaches it here."""
    return any(_context_role(role) in {"Instructor", "Administrator"} for role in roles)


def learns(roles: list[str]) -> bool:
    return any(_context_role(role) == "Learner" for role in roles)


def _username(issuer: str, sub: str) -> str:
    # Keyed by issuer + sub, never by email: two platforms may both know an "ana".
    return "lti-" + hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()[:24]


@transaction.atomic
def do_get_or_create_lti_user(issuer: str, person: Person) -> User:
    """The local user for `person` of `issuer`, created on first sight; names and email follow
    the platform's latest word."""
    identity = LtiIdentity.objects.select_related("user").filter(issuer=issuer, sub=person.sub).first()
    if identity is None:
        try:
            with transaction.atomic():  # two first launches at once: the second finds the first's
                user = User(username=_username(issuer, person.sub))
                user.set_unusable_password()
                user.save()
                identity = LtiIdentity.objects.create(issuer=issuer, sub=person.sub, user=user)
        except IntegrityError:
            identity = LtiIdentity.objects.select_related("user").get(issuer=issuer, sub=person.sub)
    user = identity.user
    fields = {
        "display_name": person.name[:150],
        "first_name": person.given_name[:150],
        "last_name": person.family_name[:150],
        "email": person.email[:254],
    }
    changed = [field for field, value in fields.items() if value and getattr(user, field) != value]
    for field in changed:
        setattr(user, field, fields[field])
    if changed:
        user.save(update_fields=changed)
    return user


@transaction.atomic
def do_get_or_create_lti_course(
    issuer: str, *, deployment_id: str, context_id: str, title: str, label: str, lti_context=None
) -> Course:
    """The course for one platform context (issuer + deployment + context id), created on its
    first launch with a chat room; the title follows the platform's."""
    link = (
        LtiCourse.objects.select_for_update()
        .select_related("course")
        .filter(issuer=issuer, deployment_id=deployment_id, context_id=context_id)
        .first()
    )
    title = (title or label or context_id)[:200]
    if link is None:
        digest = hashlib.sha256(f"{issuer}\n{deployment_id}\n{context_id}".encode()).hexdigest()
        try:
            with transaction.atomic():  # two first launches at once: the second finds the first's
                course = Course.objects.create(code=f"LTI-{digest[:12].upper()}", title=title, description=label)
                link = LtiCourse.objects.create(
                    issuer=issuer, deployment_id=deployment_id, context_id=context_id, course=course,
                    lti_context=lti_context,
                )
        except IntegrityError:
            link = LtiCourse.objects.select_related("course").get(
                issuer=issuer, deployment_id=deployment_id, context_id=context_id
            )
        course = link.course
    else:
        course = link.course
        if course.title != title:
            course.title = title
            course.save(update_fields=["title"])
        if lti_context is not None and link.lti_context_id != lti_context.pk:
            link.lti_context = lti_context
            link.save(update_fields=["lti_context"])
    if not course.rooms.filter(kind=Room.Kind.COURSE).exists():
        Room.objects.create(kind=Room.Kind.COURSE, course=course, name=CHAT_ROOM_NAME)
    return course


@transaction.atomic
def do_apply_lti_roles(course: Course, *, user: User, roles: list[str]) -> None:
    """Make `user`'s place in `course` what the platform's roles say now: teaching roles teach,
    Learner is enrolled (and no longer teaches, if they did). Other roles (Mentor, …) change
    nothing. Leaving the course altogether is the roster sync's job."""
    if teaches(roles):
        course.instructors.add(user)
        if user.role != User.Role.INSTRUCTOR:
            user.role = User.Role.INSTRUCTOR
            user.save(update_fields=["role"])
    elif learns(roles):
        do_enrol_user(course, user=user)
        if course.instructors.filter(pk=user.pk).exists():
            do_remove_instructor(course, user=user)


@dataclass
class RosterChange:
    enrolled: int = 0
    instructors_added: int = 0
    unenrolled: int = 0
    instructors_removed: int = 0


@transaction.atomic
def do_sync_roster(link: LtiCourse, *, members: list[dict]) -> RosterChange:
    """Apply a Names and Roles membership list to the linked course: active members are
    enrolled (or teach), and platform people no longer in it, or no longer active, leave it
    (their open streams end). People who did not come from this platform are left alone."""
    course = link.course
    change = RosterChange()
    keep_students, keep_instructors = set(), set()
    for member in members:
        if member.get("status", "Active") != "Active" or not member.get("user_id"):
            continue
        person = Person(
            sub=str(member["user_id"]),
            name=member.get("name") or "",
            given_name=member.get("given_name") or "",
            family_name=member.get("family_name") or "",
            email=member.get("email") or "",
        )
        user = do_get_or_create_lti_user(link.issuer, person)
        roles = member.get("roles") or []
        if teaches(roles):
            keep_instructors.add(user.pk)
            if not course.instructors.filter(pk=user.pk).exists():
                do_apply_lti_roles(course, user=user, roles=roles)
                change.instructors_added += 1
        elif learns(roles):
            keep_students.add(user.pk)
            if not course.enrolments.filter(user=user).exists():
                do_enrol_user(course, user=user)
                change.enrolled += 1
    from_platform = LtiIdentity.objects.filter(issuer=link.issuer).values("user_id")
    for user in course.students.filter(pk__in=from_platform).exclude(pk__in=keep_students):
        do_unenrol_user(course, user=user)
        change.unenrolled += 1
    for user in course.instructors.filter(pk__in=from_platform).exclude(pk__in=keep_instructors):
        do_remove_instructor(course, user=user)
        change.instructors_removed += 1
    link.last_synced = timezone.now()
    link.save(update_fields=["last_synced"])
    return change
