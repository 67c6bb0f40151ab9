"""Questions, votes and a poll on the sample live stream, for the demo."""

from django.db import transaction

from lms.livestream.models import Stream
from lms.qa.actions import do_ask_question, do_create_poll, do_set_vote, do_vote_poll
from lms.qa.models import Question


@transaction.atomic
def create(sample) -> None:
    stream = Stream.objects.filter(course=sample.courses["BIO101"], state=Stream.State.LIVE).first()
    if stream is None or Question.objects.filter(stream=stream).exists():
        return
    people = sample.people
    first, _ = do_ask_question(stream, author=people["ana"], text="How do ribosomes know where to start reading?")
    second, _ = do_ask_question(stream, author=people["ben"], text="Is the cell membrane on the exam?", anonymous=True)
    for voter in ("chloe", "dmitri"):
        do_set_vote(first, user=people[voter], voted=True)
    do_set_vote(second, user=people["ana"], voted=True)
    poll = do_create_poll(stream, creator=people["ines"], question="How is the pace so far?",
                          options=["Too slow", "Just right", "Too fast"])
    options = list(poll.options.all())
    do_vote_poll(poll, user=people["ana"], option=options[1])
    do_vote_poll(poll, user=people["ben"], option=options[1])
    do_vote_poll(poll, user=people["chloe"], option=options[2])
