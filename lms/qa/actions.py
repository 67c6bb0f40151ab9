"""Every write to Q&A and polls: each saves, then announces once the transaction commits.

Viewers get the ranked list without askers' names where they asked anonymously; the control
panel (a channel only instructors may read) gets the same list with every name.
"""

import uuid

from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lms.accounts.models import User
from lms.livestream.models import Stream
from lms.qa.models import Poll, PollOption, PollVote, Question, Vote
from lms.realtime import channel, parse_channel, publish_snapshot_on_commit, rewrite_stored, stored_key
from lms.realtime.coalesce import coalesce

# The list each channel family of a stream shows: viewers', and the instructors' queue.
_QUESTION_TEMPLATES = {"stream": "qa/panel.html#question-list", "stream_manage": "qa/panel.html#question-queue"}

# Votes come in bursts (a lecture hall upvoting at once): the re-ranked list and a poll's
# results are pushed at most this often per stream and poll, each push with every vote so far.
PUSH_DELAY = 0.5


def announce_questions(stream: Stream) -> None:
    """Push the re-ranked list to viewers and to the control panel, once the transaction
    commits, coalesced (`PUSH_DELAY`)."""
    transaction.on_commit(lambda: coalesce("questions", stream.pk), robust=True)


def push_questions(stream_id: int, _changes: dict) -> None:
    """The list as it is now, rendered once for viewers and once for the control panel."""

    def build():
        stream = Stream.objects.get(pk=stream_id)
        questions = list(Question.objects.filter(stream=stream).visible().ranked())
        # Each stored list is rendered again when a question in it is taken off the list.
        source = stored_key("qa_questions", stream.pk)
        shows = [stored_key("qa_question", q.pk) for q in questions]
        contexts = _question_contexts(stream, questions)
        return [
            (channel(kind, stream.pk), "questions_changed", template, contexts[kind], source, shows)
            for kind, template in _QUESTION_TEMPLATES.items()
        ]

    # Two pushes at once (two processes): the list stored last is ranked with both.
    publish_snapshot_on_commit(Stream.objects.filter(pk=stream_id), build)


def render_stored_questions(pk: int, channel_name: str, event: str) -> str | None:
    """A stored question list of stream `pk`, as that channel's page shows it now."""
    stream = Stream.objects.filter(pk=pk).first()
    parsed = parse_channel(channel_name)
    if stream is None or parsed is None or parsed[0] not in _QUESTION_TEMPLATES:
        return None
    questions = list(Question.objects.filter(stream=stream).visible().ranked())
    context = _question_contexts(stream, questions)[parsed[0]]
    return render_to_string(_QUESTION_TEMPLATES[parsed[0]], context).strip()


def _question_contexts(stream: Stream, questions: list[Question]) -> dict[str, dict]:
    """What each channel family's list shows: the instructors' queue also lists the dismissed,
    to filter by and reopen (instructors only: their channel is theirs)."""
    context = {"stream": stream, "questions": questions}
    return {
        "stream": context,
        "stream_manage": {**context, "dismissed": list(Question.objects.filter(stream=stream).dismissed())},
    }


def _forget_question(question: Question) -> None:
    """A question taken off the list leaves no stored copy of its text (see `lms.realtime.copies`)."""
    rewrite_stored(stored_key("qa_question", question.pk))


def _recount(question: Question) -> None:
    question.votes_count = Vote.objects.filter(question=question).count()
    Question.objects.filter(pk=question.pk).update(votes_count=question.votes_count)


@transaction.atomic
def do_ask_question(
    stream: Stream, *, author: User, text: str, anonymous: bool = False, client_token: uuid.UUID | None = None
) -> tuple[Question, bool]:
    """Ask. `text` is already checked. A retried ask (same client token) is stored once."""
    if client_token is not None:
        existing = Question.objects.filter(author=author, client_token=client_token).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            question = Question.objects.create(
                stream=stream, author=author, text=text, anonymous=anonymous, client_token=client_token
            )
    except IntegrityError:
        return Question.objects.get(author=author, client_token=client_token), False
    announce_questions(stream)
    return question, True


@transaction.atomic
def do_set_vote(question: Question, *, user: User, voted: bool) -> bool:
    """Add or take back `user`'s vote; the unique constraint, not the page, keeps it to one.

    Returns whether the user's vote now stands. Two requests at once both end with one vote.
    """
    # Lock the question first: two voters at once would otherwise each count without the
    # other's uncommitted vote, and the later write would lose one from votes_count. A write,
    # not SELECT FOR UPDATE, so that SQLite waits for its write lock instead of failing.
    Question.objects.filter(pk=question.pk).update(votes_count=F("votes_count"))
    if voted:
        try:
            with transaction.atomic():
                Vote.objects.create(question=question, user=user)
        except IntegrityError:
            pass  # already voted (a double click, or the same request twice)
    else:
        Vote.objects.filter(question=question, user=user).delete()
    _recount(question)
    announce_questions(question.stream)
    return voted


@transaction.atomic
def do_withdraw_question(question: Question) -> None:
    """The asker takes their question back. Assumes `access_own_question`."""
    Question.objects.filter(pk=question.pk).update(state=Question.State.WITHDRAWN, pinned=False)
    _forget_question(question)
    announce_questions(question.stream)


def _set_state(question: Question, state: str, **extra) -> None:
    Question.objects.filter(pk=question.pk).update(state=state, **extra)
    announce_questions(question.stream)


@transaction.atomic
def do_answer_question(question: Question) -> None:
    _set_state(question, Question.State.ANSWERED, answered_at=timezone.now(), pinned=False)


@transaction.atomic
def do_reopen_question(question: Question) -> None:
    _set_state(question, Question.State.OPEN, answered_at=None)


@transaction.atomic
def do_dismiss_question(question: Question) -> None:
    _set_state(question, Question.State.DISMISSED, pinned=False)
    _forget_question(question)


@transaction.atomic
def do_pin_question(question: Question) -> None:
    """Highlight the question being answered now, for every viewer. One pinned at a time."""
    Question.objects.filter(stream=question.stream, pinned=True).exclude(pk=question.pk).update(pinned=False)
    _set_state(question, Question.State.OPEN, pinned=True)


@transaction.atomic
def do_unpin_question(question: Question) -> None:
    Question.objects.filter(pk=question.pk).update(pinned=False)
    announce_questions(question.stream)


@transaction.atomic
def do_merge_question(duplicate: Question, *, into: Question) -> Question:
    """Fold a duplicate into another question: its voters vote for the other, nobody twice; the
    duplicate leaves the list. Both must be of the same stream (checked by the view)."""
    list(Question.objects.select_for_update().filter(pk__in=[duplicate.pk, into.pk]).order_by("pk"))
    voters = set(Vote.objects.filter(question=duplicate).values_list("user_id", flat=True))
    already = set(Vote.objects.filter(question=into).values_list("user_id", flat=True))
    Vote.objects.bulk_create([Vote(question=into, user_id=uid) for uid in voters - already])
    Vote.objects.filter(question=duplicate).delete()
    Question.objects.filter(pk=duplicate.pk).update(state=Question.State.MERGED, merged_into=into, pinned=False, votes_count=0)
    _recount(into)
    announce_questions(into.stream)
    return into


def do_post_unanswered_summary(stream: Stream, *, author: User) -> None:
    """After a stream, its unanswered questions go to the course room as one message."""
    from lms.chat.actions import do_create_room, do_post_message
    from lms.chat.models import Room

    open_questions = list(Question.objects.filter(stream=stream, state=Question.State.OPEN, merged_into__isnull=True).order_by("-votes_count", "created"))
    if not open_questions:
        return
    room = Room.objects.filter(course=stream.course, kind=Room.Kind.COURSE).order_by("pk").first()
    if room is None:
        room = do_create_room(stream.course, creator=author, name="General")
    lines = [_("Unanswered questions from the livestream “%(title)s”:") % {"title": stream.title}]
    for question in open_questions[:50]:
        votes = ngettext("%(count)s vote", "%(count)s votes", question.votes_count) % {"count": question.votes_count}
        lines.append(f"• {question.text} ({votes})")
    if len(open_questions) > 50:
        lines.append(_("…and %(count)s more.") % {"count": len(open_questions) - 50})
    body = "\n".join(lines)[:4000]
    do_post_message(room, author=author, body=body)


# -- polls ---------------------------------------------------------------------------------


def announce_poll(poll: Poll, *, created: bool = False) -> None:
    """Push a new poll at once, and its changed results coalesced (`PUSH_DELAY`)."""
    if created:
        _push_poll(poll.pk, created=True)
    else:
        transaction.on_commit(lambda: coalesce("poll", poll.pk), robust=True)


def push_poll_results(poll_id: int, _changes: dict) -> None:
    _push_poll(poll_id)


def _push_poll(poll_id: int, *, created: bool = False) -> None:
    def build():
        fresh = Poll.objects.get(pk=poll_id)
        counts = dict(PollVote.objects.filter(poll=fresh).values_list("option").annotate(n=Count("pk")))
        total = sum(counts.values())
        options = [
            {"option": o, "count": counts.get(o.pk, 0), "percent": round(100 * counts.get(o.pk, 0) / total) if total else 0}
            for o in fresh.options.all()
        ]
        context = {"poll": fresh, "options": options, "total": total, "oob": not created}
        event = "poll_created" if created else "poll_changed"
        return [
            (name, event, "qa/panel.html#poll", context)
            for name in (channel("stream", fresh.stream_id), channel("stream_manage", fresh.stream_id))
        ]

    # Two votes at once: the results pushed last count both.
    publish_snapshot_on_commit(Poll.objects.filter(pk=poll_id), build)


@transaction.atomic
def do_create_poll(stream: Stream, *, creator: User, question: str, options: list[str]) -> Poll:
    """Ask a poll with 2 to 6 options (checked by the form)."""
    poll = Poll.objects.create(stream=stream, question=question, created_by=creator)
    PollOption.objects.bulk_create([PollOption(poll=poll, text=text, position=n) for n, text in enumerate(options)])
    announce_poll(poll, created=True)
    return poll


@transaction.atomic
def do_vote_poll(poll: Poll, *, user: User, option: PollOption) -> None:
    """One vote per member; voting again moves it, until the poll closes (checked here)."""
    # Lock with a write, not SELECT FOR UPDATE: SQLite then waits for its write lock instead of
    # failing with "database is locked" when another vote holds it.
    Poll.objects.filter(pk=poll.pk).update(state=F("state"))
    poll = Poll.objects.get(pk=poll.pk)
    if not poll.is_open:
        raise PollClosed
    PollVote.objects.update_or_create(poll=poll, user=user, defaults={"option": option})
    announce_poll(poll)


@transaction.atomic
def do_close_poll(poll: Poll) -> None:
    Poll.objects.filter(pk=poll.pk, state=Poll.State.OPEN).update(state=Poll.State.CLOSED, closed_at=timezone.now())
    announce_poll(poll)


class PollClosed(Exception):
    pass
