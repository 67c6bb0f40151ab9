"""People and courses for the demo. Other apps add theirs in their own `sample_data.py`."""

from dataclasses import dataclass, field

from django.db import transaction

from lms.accounts.models import User
from lms.courses.actions import do_enrol_user
from lms.courses.models import Course

PASSWORD = "demo-password-2026"

PEOPLE = [
    # username, display name, role, staff
    ("ines", "Inés Moreau", User.Role.INSTRUCTOR, False),
    ("omar", "Omar Haddad", User.Role.INSTRUCTOR, False),
    ("ana", "Ana Souza", User.Role.STUDENT, False),
    ("ben", "Ben Okafor", User.Role.STUDENT, False),
    ("chloe", "Chloé Martin", User.Role.STUDENT, False),
    ("dmitri", "Dmitri Volkov", User.Role.STUDENT, False),
    ("eun", "Eun-ji Park", User.Role.STUDENT, False),
    ("farah", "فرح النجار", User.Role.STUDENT, False),
    ("admin", "Site admin", User.Role.INSTRUCTOR, True),
]

COURSES = [
    # code, title, instructors, students
    ("BIO101", "Introduction to Biology", ["ines"], ["ana", "ben", "chloe", "dmitri"]),
    ("CS102", "Programming in Python", ["omar"], ["ana", "ben", "eun", "farah"]),
    ("HIS210", "Modern History", ["ines", "omar"], ["chloe", "dmitri", "eun"]),
]


@dataclass
class Sample:
    people: dict[str, User] = field(default_factory=dict)
    courses: dict[str, Course] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)


@transaction.atomic
def create(sample: Sample) -> None:
    for username, name, role, staff in PEOPLE:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"display_name": name, "role": role, "is_staff": staff, "is_superuser": staff},
        )
        if created:
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
        sample.people[username] = user
        sample.logins.append(("staff" if staff else str(role), username, PASSWORD))

    for code, title, instructors, students in COURSES:
        course, _ = Course.objects.get_or_create(code=code, defaults={"title": title})
        course.instructors.add(*(sample.people[u] for u in instructors))
        for username in students:
            do_enrol_user(course, user=sample.people[username])
        sample.courses[code] = course
