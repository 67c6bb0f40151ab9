from datetime import timedelta

import factory
from django.utils import timezone

from lms.accounts.models import User
from lms.courses.models import Course, Enrolment


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name")
    role = User.Role.STUDENT
    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "pw-for-tests")
        if create:
            self.save(update_fields=["password"])


class InstructorFactory(UserFactory):
    role = User.Role.INSTRUCTOR


class CourseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Course
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"C{n:03d}")
    title = factory.Faker("sentence", nb_words=3)

    @factory.post_generation
    def instructors(self, create, extracted, **kwargs):
        if create and extracted:
            self.instructors.add(*extracted)


class EnrolmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrolment

    course = factory.SubFactory(CourseFactory)
    user = factory.SubFactory(UserFactory)


class RoomFactory(factory.django.DjangoModelFactory):
    """A course room; for a direct conversation use `do_get_or_create_direct_room`."""

    class Meta:
        model = "chat.Room"

    kind = "course"
    course = factory.SubFactory(CourseFactory)
    name = factory.Sequence(lambda n: f"Room {n}")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "chat.Message"

    room = factory.SubFactory(RoomFactory)
    author = factory.SubFactory(UserFactory)
    body = factory.Sequence(lambda n: f"Message number {n}")
    body_html = factory.LazyAttribute(lambda message: _render_message(message.body))


def _render_message(body: str) -> str:
    from lms.chat.text import render_message

    return render_message(body)


class StreamFactory(factory.django.DjangoModelFactory):
    """A stream scheduled an hour from now, without a chat room (`do_create_stream` makes one).

    `StreamFactory(live=True)` or `StreamFactory(ended=True)` for the other states.
    """

    class Meta:
        model = "livestream.Stream"

    class Params:
        live = factory.Trait(state="live", started_at=factory.LazyFunction(timezone.now))
        ended = factory.Trait(
            state="ended",
            started_at=factory.LazyFunction(lambda: timezone.now() - timedelta(hours=2)),
            ended_at=factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1)),
        )

    course = factory.SubFactory(CourseFactory)
    title = factory.Sequence(lambda n: f"Stream {n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    ends_at = factory.LazyAttribute(lambda stream: stream.starts_at + timedelta(hours=1))
    chat_enabled = False
