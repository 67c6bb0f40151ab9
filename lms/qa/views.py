import json
import uuid

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget, trigger_client_event

from lms import ratelimit
from lms.chat.access import active_course_mute
from lms.qa.access import (
    access_own_question,
    access_poll,
    access_poll_to_run,
    access_question,
    access_question_to_run,
    access_stream_qa,
    access_stream_to_run_polls,
)
from lms.qa.actions import (
    PollClosed,
    do_answer_question,
    do_ask_question,
    do_close_poll,
    do_create_poll,
    do_dismiss_question,
    do_merge_question,
    do_pin_question,
    do_reopen_question,
    do_set_vote,
    do_unpin_question,
    do_vote_poll,
    do_withdraw_question,
)
from lms.qa.forms import PollForm, QuestionForm
from lms.qa.models import Poll, PollVote, Question, Vote


def qa_context(request, stream) -> dict:
    """What the stream page and the control panel need to show the Q&A and polls."""
    questions = list(Question.objects.filter(stream=stream).visible().ranked())
    polls = []
    for poll in Poll.objects.filter(stream=stream).prefetch_related("options", "votes"):
        votes = list(poll.votes.all())
        total = len(votes)
        counts = {}
        for vote in votes:
            counts[vote.option_id] = counts.get(vote.option_id, 0) + 1
        options = [
            {"option": o, "count": counts.get(o.pk, 0), "percent": round(100 * counts.get(o.pk, 0) / total) if total else 0}
            for o in poll.options.all()
        ]
        polls.append({"poll": poll, "options": options, "total": total})
    return {
        "questions": questions,
        "dismissed": Question.objects.filter(stream=stream).dismissed(),  # read by instructors' pages only
        "polls": polls,
        "question_form": QuestionForm(),
        "poll_form": PollForm(),
        "client_token": uuid.uuid4(),
        # Per-viewer state that shared fragments cannot carry; the page's script applies it.
        "my_votes": " ".join(str(pk) for pk in Vote.objects.filter(question__stream=stream, user=request.user).values_list("question_id", flat=True)),
        "my_poll_votes": json.dumps(dict(PollVote.objects.filter(poll__stream=stream, user=request.user).values_list("poll_id", "option_id"))),
        "my_questions": " ".join(
            str(pk) for pk in Question.objects.filter(stream=stream, author=request.user).values_list("pk", flat=True)
        ),
    }


def _posted_pk(request, name: str) -> int:
    """A posted id, or 0 (which matches nothing) when it is missing or not a number."""
    value = request.POST.get(name, "")
    return int(value) if value.isdecimal() else 0


def _ask_form_response(request, stream, form):
    context = {"stream": stream, "question_form": form, "client_token": form.data.get("client_token") or uuid.uuid4()}
    response = render(request, "qa/panel.html#ask-form", context)
    return reswap(retarget(response, "#ask-form"), "outerHTML")


@require_POST
@login_required
def question_create(request, stream_id: int):
    stream = access_stream_qa(request.user, stream_id)
    form = QuestionForm(request.POST)
    if active_course_mute(request.user, stream.course_id):
        # Votes stay open to the muted: they add no words of their own.
        form.is_valid()
        form.add_error(None, _("You are muted in this course: you cannot ask questions for now."))
        return _ask_form_response(request, stream, form)
    if not form.is_valid():
        return _ask_form_response(request, stream, form)
    if stream.is_ended:
        form.add_error(None, _("This stream has ended: questions are closed."))
        return _ask_form_response(request, stream, form)
    wait = ratelimit.check("ask", request.user, stream.pk)
    if wait:
        form.add_error(None, _("Slow down: you can ask again in %(seconds)s s.") % {"seconds": wait})
        response = _ask_form_response(request, stream, form)
        response.status_code = 429
        response["Retry-After"] = str(wait)
        return response
    question, _created = do_ask_question(
        stream, author=request.user, text=form.cleaned_data["text"], anonymous=form.cleaned_data["anonymous"],
        client_token=form.cleaned_data["client_token"],
    )
    return trigger_client_event(HttpResponse(status=204), "question-asked", {"question": question.pk, "target": "body"})


@require_POST
@login_required
def question_vote(request, question_id: int):
    # The events below go to <body>: the pushed list may replace the button before this answer.
    question = access_question(request.user, question_id)
    if not question.is_open or question.merged_into_id:
        return HttpResponse(_("Only open questions take votes."), status=409)
    if wait := ratelimit.check("question_vote", request.user):
        return ratelimit.refused(request, wait)
    voted = do_set_vote(question, user=request.user, voted=request.POST.get("vote") != "remove")
    return trigger_client_event(HttpResponse(status=204), "vote-changed", {"question": question.pk, "voted": voted, "target": "body"})


@require_POST
@login_required
def question_withdraw(request, question_id: int):
    question = access_own_question(request.user, question_id)
    do_withdraw_question(question)
    return HttpResponse(status=204)


@require_POST
@login_required
def question_run(request, question_id: int, verb: str):
    question = access_question_to_run(request.user, question_id)
    if verb not in ("merge", "answer", "reopen", "dismiss", "pin", "unpin"):
        raise Http404
    if verb == "merge":
        into = get_object_or_404(Question.objects.visible(), pk=_posted_pk(request, "into"), stream=question.stream)
        if into.pk == question.pk:
            return HttpResponse(_("A question cannot be merged into itself."), status=400)
        do_merge_question(question, into=into)
    else:
        {
            "answer": do_answer_question, "reopen": do_reopen_question, "dismiss": do_dismiss_question,
            "pin": do_pin_question, "unpin": do_unpin_question,
        }[verb](question)
    return HttpResponse(status=204)


@require_POST
@login_required
def poll_create(request, stream_id: int):
    stream = access_stream_to_run_polls(request.user, stream_id)
    form = PollForm(request.POST)
    if not form.is_valid():
        response = render(request, "qa/panel.html#poll-form", {"stream": stream, "poll_form": form})
        return reswap(retarget(response, "#poll-form"), "outerHTML")
    do_create_poll(stream, creator=request.user, question=form.cleaned_data["question"], options=form.cleaned_data["options"])
    return trigger_client_event(HttpResponse(status=204), "poll-created")


@require_POST
@login_required
def poll_vote(request, poll_id: int):
    poll = access_poll(request.user, poll_id)
    option = get_object_or_404(poll.options, pk=_posted_pk(request, "option"))
    if wait := ratelimit.check("poll_vote", request.user):
        return ratelimit.refused(request, wait)
    try:
        do_vote_poll(poll, user=request.user, option=option)
    except PollClosed:
        return HttpResponse(_("This poll is closed."), status=409)
    return trigger_client_event(HttpResponse(status=204), "poll-voted", {"poll": poll.pk, "option": option.pk, "target": "body"})


@require_POST
@login_required
def poll_close(request, poll_id: int):
    poll = access_poll_to_run(request.user, poll_id)
    do_close_poll(poll)
    return HttpResponse(status=204)
