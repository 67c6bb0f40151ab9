"""Who may ask, vote and run the Q&A and polls of which stream. The qa app's only checks."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from lms.livestream.access import access_stream, can_manage_stream
from lms.livestream.models import Stream
from lms.qa.models import Poll, Question


def access_stream_qa(user, stream_id: int) -> Stream:
    """A stream of the user's course with Q&A switched on; 404 otherwise."""
    stream = access_stream(user, stream_id)
    if not stream.qa_enabled:
        raise Http404
    return stream


def access_question(user, question_id: int) -> Question:
    streams = Stream.objects.for_member(user).filter(qa_enabled=True).values("pk")
    return get_object_or_404(Question.objects.select_related("stream", "stream__course"), pk=question_id, stream__in=streams)


def access_question_to_run(user, question_id: int) -> Question:
    """Answer, dismiss, pin, merge: the course's instructors (and staff) only."""
    question = access_question(user, question_id)
    if not can_manage_stream(user, question.stream_id):
        raise PermissionDenied
    return question


def access_own_question(user, question_id: int) -> Question:
    """Withdraw: the asker only."""
    question = access_question(user, question_id)
    if question.author_id != user.pk:
        raise PermissionDenied
    return question


def access_poll(user, poll_id: int) -> Poll:
    streams = Stream.objects.for_member(user).values("pk")
    return get_object_or_404(Poll.objects.select_related("stream"), pk=poll_id, stream__in=streams)


def access_poll_to_run(user, poll_id: int) -> Poll:
    poll = access_poll(user, poll_id)
    if not can_manage_stream(user, poll.stream_id):
        raise PermissionDenied
    return poll


def access_stream_to_run_polls(user, stream_id: int) -> Stream:
    stream = access_stream(user, stream_id)
    if not can_manage_stream(user, stream.pk):
        raise PermissionDenied
    return stream
