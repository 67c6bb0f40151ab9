"""A room per course with a few messages, and one direct conversation, for the demo."""

from django.db import transaction

from lms.chat.actions import (
    do_add_reaction,
    do_create_room,
    do_get_or_create_direct_room,
    do_mark_read,
    do_post_message,
    room_members,
)
from lms.chat.models import Room

# Reactions on a course's messages: (index of the message in its SCRIPT, who, emoji).
REACTIONS = {"BIO101": [(0, "ana", "👋"), (0, "ben", "👋"), (2, "ana", "🙏"), (2, "ben", "👍")]}

SCRIPT = {
    "BIO101": [
        ("ines", "Welcome to **Introduction to Biology**! Ask anything about the course here."),
        ("ana", "Are the lab notes for week 2 online yet?"),
        ("ines", "Yes: https://en.wikipedia.org/wiki/Cell_(biology) is the reading, and the notes are on the course page."),
        ("ben", "Thanks! The diagram of the *mitochondrion* on slide 4 helped a lot, @ana."),
    ],
    "CS102": [
        ("omar", "Hello everyone. Post code with backticks, like `print(\"hi\")`, or a block:\n```\nfor n in range(3):\n    print(n)\n```"),
        ("eun", "Does the first assignment need type hints?"),
        ("omar", "Not required, but _recommended_. See [the typing docs](https://docs.python.org/3/library/typing.html)."),
    ],
    "HIS210": [
        ("omar", "First seminar on Thursday. Bring one question about the reading."),
        ("chloe", "Will it be recorded?"),
        ("ines", "Yes, and the slides will be up too. Start with **chapter 2** of https://www.gutenberg.org/ebooks/search/?query=history"),
    ],
}


@transaction.atomic
def create(sample) -> None:
    for code, course in sample.courses.items():
        room = Room.objects.filter(course=course, name="General").first()
        if room is None:
            room = do_create_room(course, creator=course.instructors.first(), name="General")
        if not room.messages.exists():
            posted = [do_post_message(room, author=sample.people[username], body=body)[0] for username, body in SCRIPT.get(code, [])]
            for index, username, emoji in REACTIONS.get(code, []):
                do_add_reaction(posted[index], user=sample.people[username], emoji=emoji, rate_limited=False)
        # Ana has read the start of her course rooms: the rest shows as unread.
        if room.messages.count() > 1 and sample.people["ana"] in room_members(room):
            do_mark_read(room, user=sample.people["ana"], last_id=room.messages.order_by("pk")[1].pk)
    ana, ben = sample.people["ana"], sample.people["ben"]
    direct = do_get_or_create_direct_room(ana, other=ben)
    if not direct.messages.exists():
        do_post_message(direct, author=ana, body="Want to revise for the biology quiz together?")
        do_post_message(direct, author=ben, body="Sure, library at 4?")
