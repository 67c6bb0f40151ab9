"""lms.qa: one vote per member (also under concurrent requests), merge arithmetic, anonymity,
access to every view, the pushes and their ranking, asking, polls, the after-stream summary, times."""

import html
import json
import re
import threading
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from lms import ratelimit
from lms.chat.models import Message, Room
from lms.livestream.actions import do_end_stream
from lms.qa.actions import (
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
from lms.qa.forms import PollForm
from lms.qa.models import Poll, PollVote, Question, Vote
from tests.factories import CourseFactory, InstructorFactory, RoomFactory, StreamFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
SECRET_NAME = "Zoë Secretname"


# --- Fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_flood_counts():
    ratelimit.reset()
    yield
    ratelimit.reset()


@pytest.fixture
def staff(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def classmate(course):
    ben = UserFactory(username="ben", display_name="Ben Okafor")
    course.enrolments.create(user=ben)
    return ben


@pytest.fixture
def asker(course):
    """A student with a name that must not leak when she asks anonymously."""
    zoe = UserFactory(username="zoe", display_name=SECRET_NAME)
    course.enrolments.create(user=zoe)
    return zoe


@pytest.fixture
def stream(course):
    """Live since ten minutes ago, Q&A on, no chat (the Q&A is the only live part under test)."""
    return StreamFactory(course=course, title="Cell biology", live=True, started_at=timezone.now() - timedelta(minutes=10))


@pytest.fixture
def other_stream(db):
    other = CourseFactory(code="CS102", instructors=[InstructorFactory(username="omar")])
    return StreamFactory(course=other, live=True)


@pytest.fixture
def question(stream, member):
    return ask(stream, member, "What does the mitochondrion do?")


def ask(stream, user, text, **kwargs) -> Question:
    question, _ = do_ask_question(stream, author=user, text=text, **kwargs)
    return question


def students(course, count: int) -> list:
    users = UserFactory.create_batch(count)
    for user in users:
        course.enrolments.create(user=user)
    return users


def vote(question, *users) -> None:
    for user in users:
        do_set_vote(question, user=user, voted=True)


def voter_ids(question) -> set[int]:
    return set(Vote.objects.filter(question=question).values_list("user_id", flat=True))


def login(client, user):
    client.force_login(user)
    return client


def list_ids(fragment: str) -> list[int]:
    """Question ids of the viewers' list, in order."""
    return [int(pk) for pk in re.findall(r'<li id="question-(\d+)"', fragment)]


def queue_ids(fragment: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<li id="queue-question-(\d+)"', fragment)]


def pushed(sent_events, event: str) -> dict[str, str]:
    """channel -> data of the (last) push of `event`."""
    return {channel: data for channel, name, data in sent_events if name == event}


def textarea(markup: str, element_id: str) -> str:
    return html.unescape(re.search(rf'<textarea id="{element_id}"[^>]*>(.*?)</textarea>', markup, re.DOTALL).group(1))


def poll_figures(fragment: str) -> dict[int, tuple[int, int]]:
    """option pk -> (votes, percent) as the poll fragment shows them."""
    rows = re.findall(
        r'data-option="(\d+)">.*?<span class="poll-figures">(\d+) votes? · (\d+)%</span>', fragment, re.DOTALL
    )
    return {int(pk): (int(count), int(percent)) for pk, count, percent in rows}


def hx_trigger(response) -> dict:
    return json.loads(response.headers["HX-Trigger"])


def run_together(*functions):
    """Run each function in its own thread, released at the same moment; their results in order.

    Each thread has its own database connection, closed when it is done.
    """
    barrier = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def work(index, function):
        try:
            barrier.wait(timeout=10)
            results[index] = function()
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(n, f)) for n, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]
    return results


# --- Votes: one per member, checked by the database ---------------------------------------------


@pytest.mark.parametrize("through", ["action", "view"])
def test_vote_concurrent_requests_from_one_member_count_once(transactional_db, stream, member, sent_events, through):
    question = ask(stream, member, "Twice at once?")

    def by_action():
        do_set_vote(Question.objects.get(pk=question.pk), user=member, voted=True)
        return 204

    def by_view():
        client = login(Client(), member)
        return client.post(reverse("qa:vote", args=[question.pk])).status_code

    statuses = run_together(*[by_action if through == "action" else by_view] * 2)

    assert statuses == [204, 204]
    assert Vote.objects.filter(question=question).count() == 1
    question.refresh_from_db()
    assert question.votes_count == 1


def test_vote_concurrent_requests_from_two_members_count_both(transactional_db, stream, course, member, sent_events):
    # The count is kept on the question: two voters at once must not overwrite each other's count.
    for _round in range(5):
        question = ask(stream, member, "Count us both?")
        first, second = students(course, 2)
        run_together(
            lambda: do_set_vote(Question.objects.get(pk=question.pk), user=first, voted=True),
            lambda: do_set_vote(Question.objects.get(pk=question.pk), user=second, voted=True),
        )
        question.refresh_from_db()
        assert Vote.objects.filter(question=question).count() == 2
        assert question.votes_count == 2


def test_vote_double_post_gives_one_vote(client, question, classmate):
    login(client, classmate)
    url = reverse("qa:vote", args=[question.pk])
    first = client.post(url, {"vote": "add"}, headers=HX)
    second = client.post(url, {"vote": "add"}, headers=HX)
    assert (first.status_code, second.status_code) == (204, 204)
    assert hx_trigger(second)["vote-changed"] == {"question": question.pk, "voted": True, "target": "body"}
    assert voter_ids(question) == {classmate.pk}
    question.refresh_from_db()
    assert question.votes_count == 1


def test_vote_remove_takes_it_back(client, question, classmate):
    vote(question, classmate)
    login(client, classmate)
    response = client.post(reverse("qa:vote", args=[question.pk]), {"vote": "remove"}, headers=HX)
    assert response.status_code == 204
    assert hx_trigger(response)["vote-changed"]["voted"] is False
    assert voter_ids(question) == set()
    question.refresh_from_db()
    assert question.votes_count == 0


def test_vote_remove_without_a_vote_changes_nothing(client, question, classmate, member):
    vote(question, member)
    login(client, classmate)
    assert client.post(reverse("qa:vote", args=[question.pk]), {"vote": "remove"}).status_code == 204
    question.refresh_from_db()
    assert question.votes_count == 1


@pytest.mark.parametrize("make", ["answered", "dismissed", "merged", "withdrawn"])
def test_vote_on_closed_question_is_refused(client, stream, question, classmate, instructor, sent_events, make,
                                            django_capture_on_commit_callbacks):
    other = ask(stream, instructor, "Another question")
    {
        "answered": lambda: do_answer_question(question),
        "dismissed": lambda: do_dismiss_question(question),
        "merged": lambda: do_merge_question(question, into=other),
        "withdrawn": lambda: do_withdraw_question(question),
    }[make]()
    login(client, classmate)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("qa:vote", args=[question.pk]), headers=HX)
    assert response.status_code == 409
    assert voter_ids(question) == set()
    assert sent_events == []


# --- Merge ---------------------------------------------------------------------------------------


@pytest.fixture
def duplicates(stream, course, member, classmate):
    """A with voters {u1, u2}; B, its duplicate, with voters {u2, u3}."""
    u1, u2, u3 = students(course, 3)
    a = ask(stream, member, "How do cells divide?")
    b = ask(stream, classmate, "how do cells divide??")
    vote(a, u1, u2)
    vote(b, u2, u3)
    return SimpleNamespace(a=a, b=b, u1=u1, u2=u2, u3=u3)


def test_merge_question_adds_votes_without_doubles(client, instructor, duplicates):
    d = duplicates
    login(client, instructor)
    response = client.post(reverse("qa:run", args=[d.b.pk, "merge"]), {"into": d.a.pk}, headers=HX)
    assert response.status_code == 204
    d.a.refresh_from_db()
    d.b.refresh_from_db()
    assert voter_ids(d.a) == {d.u1.pk, d.u2.pk, d.u3.pk}
    assert Vote.objects.filter(question=d.a).count() == 3
    assert d.a.votes_count == 3
    assert d.b.state == Question.State.MERGED
    assert d.b.merged_into == d.a
    assert voter_ids(d.b) == set()
    assert d.b.votes_count == 0
    assert list(Question.objects.visible()) == [d.a]


def test_merge_question_into_another_streams_question_is_404(client, instructor, duplicates, other_stream, staff):
    elsewhere = ask(other_stream, staff, "Elsewhere")
    login(client, instructor)
    response = client.post(reverse("qa:run", args=[duplicates.b.pk, "merge"]), {"into": elsewhere.pk})
    assert response.status_code == 404
    duplicates.b.refresh_from_db()
    assert duplicates.b.state == Question.State.OPEN
    assert voter_ids(elsewhere) == set()


def test_merge_question_as_staff_across_streams_is_still_404(client, staff, duplicates, other_stream):
    elsewhere = ask(other_stream, staff, "Elsewhere")
    login(client, staff)
    response = client.post(reverse("qa:run", args=[duplicates.b.pk, "merge"]), {"into": elsewhere.pk})
    assert response.status_code == 404
    assert Question.objects.get(pk=duplicates.b.pk).state == Question.State.OPEN


def test_merge_question_into_itself_is_400(client, instructor, duplicates):
    login(client, instructor)
    response = client.post(reverse("qa:run", args=[duplicates.b.pk, "merge"]), {"into": duplicates.b.pk})
    assert response.status_code == 400
    assert "itself" in response.content.decode()
    duplicates.b.refresh_from_db()
    assert (duplicates.b.state, duplicates.b.votes_count) == (Question.State.OPEN, 2)


@pytest.mark.parametrize("into", ["", "abc", "999999"])
def test_merge_question_without_a_valid_target_is_404(client, instructor, duplicates, into):
    login(client, instructor)
    response = client.post(reverse("qa:run", args=[duplicates.b.pk, "merge"]), {"into": into})
    assert response.status_code == 404
    assert Question.objects.get(pk=duplicates.b.pk).state == Question.State.OPEN


def test_merge_question_into_a_dismissed_question_is_404(client, instructor, duplicates):
    do_dismiss_question(duplicates.a)
    login(client, instructor)
    response = client.post(reverse("qa:run", args=[duplicates.b.pk, "merge"]), {"into": duplicates.a.pk})
    assert response.status_code == 404
    assert Question.objects.get(pk=duplicates.b.pk).state == Question.State.OPEN


def test_merge_question_unpins_a_pinned_duplicate(duplicates):
    do_pin_question(duplicates.b)
    do_merge_question(Question.objects.get(pk=duplicates.b.pk), into=duplicates.a)
    duplicates.b.refresh_from_db()
    assert not duplicates.b.pinned
    assert not Question.objects.filter(stream=duplicates.a.stream, pinned=True).exists()


# --- Anonymity: instructors see who asked, students never do -------------------------------------


@pytest.fixture
def anonymous_question(client, stream, asker, sent_events, django_capture_on_commit_callbacks):
    login(client, asker)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("qa:ask", args=[stream.pk]), {"text": "Is the exam open book?", "anonymous": "on"}, headers=HX
        )
    client.logout()
    assert response.status_code == 204
    question = Question.objects.get(author=asker)
    assert question.anonymous
    return question


def shows_name(markup: str) -> bool:
    return "Secretname" in markup or "Secretname" in html.unescape(markup)


@pytest.mark.parametrize("viewer", ["member", "classmate"])
def test_anonymous_question_hides_asker_on_stream_page(client, stream, anonymous_question, request, viewer):
    login(client, request.getfixturevalue(viewer))
    page = client.get(reverse("livestream:detail", args=[stream.pk])).content.decode()
    assert "Is the exam open book?" in page
    assert "Anonymous" in page
    assert not shows_name(page)


def test_anonymous_question_hides_asker_in_pushed_viewer_fragment(stream, anonymous_question, sent_events):
    fragments = pushed(sent_events, "questions_changed")
    assert "Is the exam open book?" in fragments[f"stream-{stream.pk}"]
    assert not shows_name(fragments[f"stream-{stream.pk}"])
    assert shows_name(fragments[f"stream_manage-{stream.pk}"])


def test_anonymous_question_hides_asker_after_votes_and_pins(stream, anonymous_question, member, sent_events,
                                                            django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        do_set_vote(anonymous_question, user=member, voted=True)
        do_pin_question(anonymous_question)
        do_answer_question(anonymous_question)
    viewer_pushes = [data for channel, _, data in sent_events if channel == f"stream-{stream.pk}"]
    assert len(viewer_pushes) == 4  # the ask, then one per change
    assert not any(shows_name(data) for data in viewer_pushes)


def test_anonymous_question_shows_asker_on_control_panel(client, stream, instructor, anonymous_question):
    login(client, instructor)
    page = client.get(reverse("livestream:manage", args=[stream.pk])).content.decode()
    assert SECRET_NAME in page
    assert "anonymous to students" in page


def test_instructors_stream_page_is_the_presenter_view_with_the_named_queue(client, stream, instructor, anonymous_question):
    # Instructors see who asked, as in the control panel (the same instructors-only channel),
    # marked as anonymous to students; students never get the name.
    login(client, instructor)
    page = client.get(reverse("livestream:detail", args=[stream.pk])).content.decode()
    assert 'id="queue-region"' in page and 'id="question-region"' not in page
    assert SECRET_NAME in page and "anonymous to students" in page
    assert f"stream_manage-{stream.pk}" in page and f"stream-{stream.pk}&" not in page


def test_named_question_shows_asker_to_students(client, stream, asker, member, sent_events,
                                                django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ask(stream, asker, "Will slides be shared?")
    assert SECRET_NAME in pushed(sent_events, "questions_changed")[f"stream-{stream.pk}"]
    login(client, member)
    page = client.get(reverse("livestream:detail", args=[stream.pk])).content.decode()
    assert SECRET_NAME in page


# --- Access to every view ------------------------------------------------------------------------


@pytest.fixture
def scene(stream, member, classmate, instructor):
    """A question by the member (to vote on, withdraw, run), a second one, an answered one, a
    pinned one, and an open poll."""
    own = ask(stream, member, "Mine")
    other = ask(stream, classmate, "Theirs")
    answered = ask(stream, classmate, "Answered")
    do_answer_question(answered)
    pinned = ask(stream, classmate, "Pinned")
    do_pin_question(pinned)
    poll = do_create_poll(stream, creator=instructor, question="Lunch?", options=["Yes", "No"])
    return SimpleNamespace(stream=stream, own=own, other=other, answered=answered, pinned=pinned, poll=poll)


def run_url(question, verb):
    return reverse("qa:run", args=[question.pk, verb])


ENDPOINTS = {
    "ask": lambda s: (reverse("qa:ask", args=[s.stream.pk]), {"text": "Why?"}),
    "vote": lambda s: (reverse("qa:vote", args=[s.own.pk]), {}),
    "withdraw": lambda s: (reverse("qa:withdraw", args=[s.own.pk]), {}),
    "answer": lambda s: (run_url(s.own, "answer"), {}),
    "reopen": lambda s: (run_url(s.answered, "reopen"), {}),
    "dismiss": lambda s: (run_url(s.own, "dismiss"), {}),
    "pin": lambda s: (run_url(s.own, "pin"), {}),
    "unpin": lambda s: (run_url(s.pinned, "unpin"), {}),
    "merge": lambda s: (run_url(s.own, "merge"), {"into": s.other.pk}),
    "poll_create": lambda s: (reverse("qa:poll_create", args=[s.stream.pk]), {"question": "Tea?", "options": "Yes\nNo"}),
    "poll_vote": lambda s: (reverse("qa:poll_vote", args=[s.poll.pk]), {"option": s.poll.options.first().pk}),
    "poll_close": lambda s: (reverse("qa:poll_close", args=[s.poll.pk]), {}),
}
RUN = ["answer", "reopen", "dismiss", "pin", "unpin", "merge", "poll_create", "poll_close"]
# 204: done; 403: a member who may not; 404: not in the course; 302: to the login page.
EXPECTED = {
    "member": {**{name: 204 for name in ENDPOINTS}, **{name: 403 for name in RUN}},
    "classmate": {**{name: 204 for name in ENDPOINTS}, **{name: 403 for name in RUN}, "withdraw": 403},
    "stranger": {name: 404 for name in ENDPOINTS},
    "instructor": {**{name: 204 for name in ENDPOINTS}, "withdraw": 403},
    "staff": {**{name: 204 for name in ENDPOINTS}, "withdraw": 403},
    "anonymous": {name: 302 for name in ENDPOINTS},
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("role", list(EXPECTED))
def test_qa_view_access(client, scene, request, role, endpoint, sent_events, django_capture_on_commit_callbacks):
    if role != "anonymous":
        login(client, request.getfixturevalue(role))
    url, data = ENDPOINTS[endpoint](scene)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data, headers=HX)
    assert response.status_code == EXPECTED[role][endpoint]
    if response.status_code == 302:
        assert response.url.startswith(reverse("login"))
    # Only what was done is announced.
    assert bool(sent_events) == (response.status_code == 204)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_qa_view_refuses_get(client, scene, instructor, endpoint):
    login(client, instructor)
    url, _ = ENDPOINTS[endpoint](scene)
    assert client.get(url).status_code == 405


@pytest.mark.parametrize("verb", ["answer", "reopen", "dismiss", "pin", "unpin", "merge"])
def test_question_run_by_student_changes_nothing(client, scene, member, verb):
    login(client, member)
    target = scene.answered if verb == "reopen" else scene.pinned if verb == "unpin" else scene.own
    before = Question.objects.values().get(pk=target.pk)
    assert client.post(run_url(target, verb), {"into": scene.other.pk}).status_code == 403
    assert Question.objects.values().get(pk=target.pk) == before


def test_question_run_with_unknown_verb_is_404(client, scene, instructor):
    login(client, instructor)
    assert client.post(run_url(scene.own, "delete")).status_code == 404


def test_question_withdraw_by_instructor_is_refused_they_dismiss_instead(client, scene, instructor):
    login(client, instructor)
    assert client.post(reverse("qa:withdraw", args=[scene.own.pk])).status_code == 403
    assert client.post(run_url(scene.own, "dismiss")).status_code == 204
    assert Question.objects.get(pk=scene.own.pk).state == Question.State.DISMISSED


def test_question_withdraw_by_asker_removes_it(client, scene, member):
    login(client, member)
    assert client.post(reverse("qa:withdraw", args=[scene.own.pk]), headers=HX).status_code == 204
    assert Question.objects.get(pk=scene.own.pk).state == Question.State.WITHDRAWN
    assert scene.own not in Question.objects.visible()


def test_question_ask_with_qa_switched_off_is_404(client, stream, member, instructor):
    Question.objects.all().delete()
    stream.qa_enabled = False
    stream.save()
    for user in (member, instructor):
        login(client, user)
        assert client.post(reverse("qa:ask", args=[stream.pk]), {"text": "Hello?"}).status_code == 404
    assert not Question.objects.exists()


def test_question_vote_with_qa_switched_off_is_404(client, stream, question, classmate):
    stream.qa_enabled = False
    stream.save()
    login(client, classmate)
    assert client.post(reverse("qa:vote", args=[question.pk])).status_code == 404
    assert voter_ids(question) == set()


def test_poll_vote_with_option_of_another_poll_is_404(client, scene, instructor, member):
    other = do_create_poll(scene.stream, creator=instructor, question="Coffee?", options=["Yes", "No"])
    login(client, member)
    response = client.post(reverse("qa:poll_vote", args=[scene.poll.pk]), {"option": other.options.first().pk})
    assert response.status_code == 404
    assert not PollVote.objects.exists()


@pytest.mark.parametrize("option", ["", "abc", "999999"])
def test_poll_vote_without_a_valid_option_is_404(client, scene, member, option):
    login(client, member)
    assert client.post(reverse("qa:poll_vote", args=[scene.poll.pk]), {"option": option}).status_code == 404
    assert not PollVote.objects.exists()


def test_poll_of_another_course_is_404_for_its_instructor(client, scene, other_stream):
    omar = other_stream.course.instructors.get()
    login(client, omar)
    assert client.post(reverse("qa:poll_close", args=[scene.poll.pk])).status_code == 404
    assert client.post(reverse("qa:poll_create", args=[scene.stream.pk]), {"question": "X?", "options": "a\nb"}).status_code == 404
    assert Poll.objects.get(pk=scene.poll.pk).is_open


# --- Pushes: every change re-sends the ranked list to viewers and to the control panel -----------


VERBS = {
    "ask": lambda s: ask(s.stream, s.classmate, "Pushed?"),
    "vote": lambda s: do_set_vote(s.question, user=s.classmate, voted=True),
    "unvote": lambda s: do_set_vote(s.question, user=s.classmate, voted=False),
    "answer": lambda s: do_answer_question(s.question),
    "reopen": lambda s: do_reopen_question(s.question),
    "dismiss": lambda s: do_dismiss_question(s.question),
    "pin": lambda s: do_pin_question(s.question),
    "unpin": lambda s: do_unpin_question(s.question),
    "merge": lambda s: do_merge_question(s.question, into=s.other),
    "withdraw": lambda s: do_withdraw_question(s.question),
}


@pytest.mark.parametrize("verb", list(VERBS))
def test_question_action_pushes_list_to_viewers_and_control_panel(
    stream, question, member, classmate, verb, sent_events, django_capture_on_commit_callbacks
):
    other = ask(stream, member, "Another one")
    s = SimpleNamespace(stream=stream, question=question, other=other, classmate=classmate)
    with django_capture_on_commit_callbacks(execute=True):
        VERBS[verb](s)
    assert [(channel, event) for channel, event, _ in sent_events] == [
        (f"stream-{stream.pk}", "questions_changed"),
        (f"stream_manage-{stream.pk}", "questions_changed"),
    ]
    viewer, queue = sent_events[0][2], sent_events[1][2]
    assert 'id="questions"' in viewer
    assert 'id="question-queue"' in queue
    # The list as stored after the change, in both.
    expected = [q.pk for q in Question.objects.filter(stream=stream).visible().ranked()]
    assert list_ids(viewer) == expected
    # The instructors' queue also lists the dismissed, after the others (its third tab).
    assert queue_ids(queue) == expected + [q.pk for q in Question.objects.filter(stream=stream).dismissed()]


def test_question_action_pushes_nothing_before_commit(stream, member, sent_events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ask(stream, member, "Not yet")
    assert callbacks
    assert sent_events == []


def test_question_list_is_ranked_pinned_open_votes_oldest(
    stream, course, member, sent_events, django_capture_on_commit_callbacks
):
    voters = students(course, 6)
    start = timezone.now() - timedelta(minutes=30)
    # Asked in an order that differs from the expected one, so neither pk nor time alone gives it.
    answered_5 = ask(stream, member, "answered, 5 votes, answered first")
    newer_2 = ask(stream, member, "open, 2 votes, newer")
    older_2 = ask(stream, member, "open, 2 votes, older")
    open_3 = ask(stream, member, "open, 3 votes")
    answered_6 = ask(stream, member, "answered, 6 votes, answered later")
    pinned = ask(stream, member, "pinned, no votes")
    dismissed = ask(stream, member, "dismissed, 6 votes")
    withdrawn = ask(stream, member, "withdrawn, 6 votes")
    merged = ask(stream, member, "merged")
    for minutes, q in enumerate([older_2, newer_2, open_3, answered_5, answered_6, pinned, dismissed, withdrawn, merged]):
        Question.objects.filter(pk=q.pk).update(created=start + timedelta(minutes=minutes))
    for q, count in [(answered_5, 5), (newer_2, 2), (older_2, 2), (open_3, 3), (answered_6, 6), (dismissed, 6), (withdrawn, 6)]:
        vote(q, *voters[:count])
    do_answer_question(answered_5)
    do_answer_question(answered_6)
    do_dismiss_question(dismissed)
    do_withdraw_question(withdrawn)
    do_merge_question(merged, into=open_3)
    with django_capture_on_commit_callbacks(execute=True):
        do_pin_question(pinned)

    expected = [pinned.pk, open_3.pk, older_2.pk, newer_2.pk, answered_6.pk, answered_5.pk]
    fragments = pushed(sent_events, "questions_changed")
    assert list_ids(fragments[f"stream-{stream.pk}"]) == expected
    assert queue_ids(fragments[f"stream_manage-{stream.pk}"]) == expected + [dismissed.pk]
    assert "Being answered now" in fragments[f"stream-{stream.pk}"]
    assert f'id="question-{pinned.pk}" class="question is-pinned' in fragments[f"stream-{stream.pk}"]
    assert "6 questions" in fragments[f"stream-{stream.pk}"]


def test_question_list_ranks_a_reopened_pinned_question_as_open(stream, member, classmate):
    first = ask(stream, member, "answered, then pinned again")
    second = ask(stream, member, "open")
    vote(first, classmate)
    do_answer_question(first)
    do_pin_question(Question.objects.get(pk=first.pk))
    do_unpin_question(Question.objects.get(pk=first.pk))
    # Pinning reopened it: it ranks as an open question with its one vote.
    assert Question.objects.get(pk=first.pk).state == Question.State.OPEN
    assert [q.pk for q in Question.objects.filter(stream=stream).visible().ranked()] == [first.pk, second.pk]


def test_pin_question_unpins_the_one_pinned_before(stream, member, sent_events, django_capture_on_commit_callbacks):
    first = ask(stream, member, "first")
    second = ask(stream, member, "second")
    do_pin_question(first)
    with django_capture_on_commit_callbacks(execute=True):
        do_pin_question(second)
    assert list(Question.objects.filter(stream=stream, pinned=True)) == [second]
    viewer = pushed(sent_events, "questions_changed")[f"stream-{stream.pk}"]
    assert list_ids(viewer)[0] == second.pk
    assert viewer.count("is-pinned") == 1


def test_pin_question_in_one_stream_leaves_another_streams_pin(stream, other_stream, member, staff):
    here = ask(stream, member, "here")
    there = ask(other_stream, staff, "there")
    do_pin_question(there)
    do_pin_question(here)
    assert set(Question.objects.filter(pinned=True)) == {here, there}


def test_answer_question_unpins_it(stream, question):
    do_pin_question(question)
    do_answer_question(question)
    question.refresh_from_db()
    assert (question.state, question.pinned) == (Question.State.ANSWERED, False)
    assert question.answered_at is not None


# --- Asking -------------------------------------------------------------------------------------


def post_question(client, stream, text, **data):
    return client.post(reverse("qa:ask", args=[stream.pk]), {"text": text, **data}, headers=HX)


def assert_form_error(response, message):
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#ask-form"
    assert response.headers["HX-Reswap"] == "outerHTML"
    body = response.content.decode()
    assert body.lstrip().startswith('<form id="ask-form"')
    assert message in html.unescape(body)
    return body


@pytest.mark.parametrize("text", ["", "   \n ", "\u200b"])
def test_question_ask_empty_is_refused(client, stream, member, text):
    login(client, member)
    assert_form_error(post_question(client, stream, text), "Write your question first.")
    assert not Question.objects.exists()


def test_question_ask_too_long_is_refused_with_the_limit_and_keeps_the_text(client, stream, member):
    login(client, member)
    text = "é" * 301
    body = assert_form_error(post_question(client, stream, text, anonymous="on"), "Keep it to 300 characters (this one has 301).")
    assert textarea(body, "id_question_text") == text
    assert 'name="anonymous" checked' in body
    assert not Question.objects.exists()


def test_question_ask_of_300_characters_is_stored(client, stream, member):
    login(client, member)
    assert post_question(client, stream, "x" * 300).status_code == 204
    assert Question.objects.get().text == "x" * 300


@pytest.mark.parametrize("text", ["Why\x00 though?", "Why\x07 though?", "Why\x1b[31m though?"])
def test_question_ask_with_nul_or_control_characters_is_refused(client, stream, member, text):
    login(client, member)
    response = post_question(client, stream, text)
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#ask-form"
    assert 'role="alert"' in response.content.decode()
    assert not Question.objects.exists()


def test_question_ask_form_error_keeps_text_and_client_token(client, stream, member):
    login(client, member)
    token = str(uuid.uuid4())
    body = assert_form_error(post_question(client, stream, "<b>bold</b>" + "!" * 300, client_token=token), "Keep it to 300")
    assert textarea(body, "id_question_text") == "<b>bold</b>" + "!" * 300
    assert "<b>bold</b>" not in body  # kept, escaped
    assert f'name="client_token" value="{token}"' in body


def test_question_ask_stores_text_trimmed_and_pushes(client, stream, member, sent_events,
                                                     django_capture_on_commit_callbacks):
    login(client, member)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_question(client, stream, "  Why is the sky blue?  \r\n")
    assert response.status_code == 204
    question = Question.objects.get()
    assert (question.text, question.author, question.anonymous) == ("Why is the sky blue?", member, False)
    assert hx_trigger(response)["question-asked"] == {"question": question.pk, "target": "body"}
    assert f'id="question-{question.pk}"' in pushed(sent_events, "questions_changed")[f"stream-{stream.pk}"]


def test_question_ask_retried_with_same_client_token_is_stored_once(client, stream, member, sent_events,
                                                                     django_capture_on_commit_callbacks):
    login(client, member)
    token = str(uuid.uuid4())
    first = post_question(client, stream, "Once?", client_token=token)
    with django_capture_on_commit_callbacks(execute=True):
        again = post_question(client, stream, "Once?", client_token=token)
    assert (first.status_code, again.status_code) == (204, 204)
    question = Question.objects.get()
    assert hx_trigger(again)["question-asked"]["question"] == question.pk
    assert sent_events == []  # nothing new to announce
    assert post_question(client, stream, "Once?", client_token=str(uuid.uuid4())).status_code == 204
    assert Question.objects.count() == 2


def test_question_ask_client_token_is_per_author(stream, member, classmate):
    token = uuid.uuid4()
    mine = ask(stream, member, "Same token", client_token=token)
    theirs = ask(stream, classmate, "Same token", client_token=token)
    assert mine != theirs
    assert Question.objects.count() == 2


def test_question_ask_after_stream_ended_is_refused_with_message(client, course, member):
    ended = StreamFactory(course=course, ended=True)
    login(client, member)
    body = assert_form_error(post_question(client, ended, "Too late?"), "This stream has ended: questions are closed.")
    assert textarea(body, "id_question_text") == "Too late?"
    assert not Question.objects.exists()


def test_question_ask_before_stream_starts_is_allowed(client, course, member):
    upcoming = StreamFactory(course=course)
    login(client, member)
    assert post_question(client, upcoming, "Early?").status_code == 204
    assert Question.objects.get().offset is None


def test_muted_member_cannot_ask_but_may_still_vote(client, stream, member, instructor, classmate):
    from lms.chat.actions import do_mute_member

    do_mute_member(stream.course, actor=instructor, user=member, until=None)
    login(client, member)
    response = post_question(client, stream, "Spam, spam, spam?")
    assert_form_error(response, "You are muted in this course")
    assert textarea(response.content.decode(), "id_question_text") == "Spam, spam, spam?"
    assert not Question.objects.exists()
    other = ask(stream, classmate, "A fair question?")
    assert client.post(reverse("qa:vote", args=[other.pk]), headers=HX).status_code == 204
    login(client, classmate)
    assert post_question(client, stream, "Not muted?").status_code == 204


def test_question_ask_flooding_gets_429_with_retry_after(client, stream, member, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ask": (3, 60)}
    login(client, member)
    for n in range(3):
        assert post_question(client, stream, f"Question {n}").status_code == 204
    response = post_question(client, stream, "One more")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.headers["HX-Retarget"] == "#ask-form"
    assert "Slow down" in response.content.decode()
    assert textarea(response.content.decode(), "id_question_text") == "One more"
    assert Question.objects.count() == 3


# --- Polls --------------------------------------------------------------------------------------


def poll_form_errors(options: str) -> list[str]:
    form = PollForm({"question": "Best organelle?", "options": options})
    assert not form.is_valid()
    return form.errors["options"]


@pytest.mark.parametrize("count", [2, 3, 6])
def test_poll_form_takes_2_to_6_options(count):
    options = [f"Option {n}" for n in range(count)]
    form = PollForm({"question": "  Best   organelle? ", "options": "\n".join(options)})
    assert form.is_valid()
    assert form.cleaned_data == {"question": "Best organelle?", "options": options}


@pytest.mark.parametrize("count", [1, 7])
def test_poll_form_refuses_fewer_than_2_or_more_than_6_options(count):
    [error] = poll_form_errors("\n".join(f"Option {n}" for n in range(count)))
    assert error == f"Give 2 to 6 options, one per line (you gave {count})."


def test_poll_form_refuses_duplicate_options():
    [error] = poll_form_errors("Nucleus\nRibosome\n  nucleus ")
    assert error == "Each option must be different."


def test_poll_form_ignores_blank_lines():
    form = PollForm({"question": "Q?", "options": "\n  Nucleus \n\n \t \nRibosome\n\n"})
    assert form.is_valid()
    assert form.cleaned_data["options"] == ["Nucleus", "Ribosome"]
    assert poll_form_errors("Nucleus\n\n   \n") == ["Give 2 to 6 options, one per line (you gave 1)."]


def test_poll_form_refuses_blank_question():
    form = PollForm({"question": "   ", "options": "a\nb"})
    assert not form.is_valid()
    assert "question" in form.errors


def test_poll_create_with_bad_options_keeps_the_text(client, stream, instructor):
    login(client, instructor)
    response = client.post(
        reverse("qa:poll_create", args=[stream.pk]), {"question": "Lunch?", "options": "Only one"}, headers=HX
    )
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#poll-form"
    body = response.content.decode()
    assert "Give 2 to 6 options, one per line (you gave 1)." in html.unescape(body)
    assert textarea(body, "id_poll_options") == "Only one"
    assert 'value="Lunch?"' in body
    assert not Poll.objects.exists()


def test_poll_create_pushes_new_poll_on_both_channels(client, stream, instructor, sent_events,
                                                      django_capture_on_commit_callbacks):
    login(client, instructor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("qa:poll_create", args=[stream.pk]), {"question": "Lunch?", "options": "Yes\nNo\n"}, headers=HX
        )
    assert response.status_code == 204
    assert "poll-created" in response.headers["HX-Trigger"]
    poll = Poll.objects.get()
    assert [o.text for o in poll.options.all()] == ["Yes", "No"]
    assert poll.created_by == instructor
    assert [(channel, event) for channel, event, _ in sent_events] == [
        (f"stream-{stream.pk}", "poll_created"),
        (f"stream_manage-{stream.pk}", "poll_created"),
    ]
    for _, _, fragment in sent_events:
        assert fragment.startswith(f'<article id="poll-{poll.pk}"')
        assert "hx-swap-oob" not in fragment  # placed by the list's sse-swap
        assert "Lunch?" in fragment and "Yes" in fragment and "No" in fragment
        assert poll_figures(fragment) == {o.pk: (0, 0) for o in poll.options.all()}


@pytest.fixture
def poll(stream, instructor):
    return do_create_poll(stream, creator=instructor, question="Best organelle?", options=["Nucleus", "Ribosome", "Golgi"])


def post_poll_vote(client, poll, option):
    return client.post(reverse("qa:poll_vote", args=[poll.pk]), {"option": option.pk}, headers=HX)


def test_poll_vote_is_one_per_member(client, poll, member):
    nucleus = poll.options.get(text="Nucleus")
    login(client, member)
    for _ in range(2):
        response = post_poll_vote(client, poll, nucleus)
        assert response.status_code == 204
    assert hx_trigger(response)["poll-voted"] == {"poll": poll.pk, "option": nucleus.pk, "target": "body"}
    assert list(PollVote.objects.values_list("user", "option")) == [(member.pk, nucleus.pk)]


def test_poll_vote_changed_moves_it_and_pushes_counts(client, poll, course, member, sent_events,
                                                      django_capture_on_commit_callbacks):
    nucleus, ribosome, golgi = poll.options.all()
    for user in students(course, 2):
        do_vote_poll(poll, user=user, option=nucleus)
    login(client, member)
    post_poll_vote(client, poll, nucleus)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_poll_vote(client, poll, ribosome).status_code == 204
    assert PollVote.objects.get(user=member).option == ribosome
    assert PollVote.objects.count() == 3
    assert [(channel, event) for channel, event, _ in sent_events] == [
        (f"stream-{poll.stream_id}", "poll_changed"),
        (f"stream_manage-{poll.stream_id}", "poll_changed"),
    ]
    fragment = sent_events[0][2]
    assert 'hx-swap-oob="true"' in fragment
    assert poll_figures(fragment) == {nucleus.pk: (2, 67), ribosome.pk: (1, 33), golgi.pk: (0, 0)}
    assert "3 votes" in fragment
    assert sent_events[1][2] == fragment


def test_poll_vote_concurrent_votes_all_count_once_each(transactional_db, stream, course, instructor, member,
                                                       sent_events):
    poll = do_create_poll(stream, creator=instructor, question="At once?", options=["Yes", "No"])
    yes, no = poll.options.all()
    voters = students(course, 3)

    def voting(user, option):
        return lambda: do_vote_poll(Poll.objects.get(pk=poll.pk), user=user, option=option)

    # Three members at once, and one member twice at once.
    run_together(*[voting(user, yes) for user in voters], voting(member, no), voting(member, no))
    assert PollVote.objects.filter(poll=poll, option=yes).count() == 3
    assert list(PollVote.objects.filter(user=member).values_list("option", flat=True)) == [no.pk]


def test_poll_vote_on_closed_poll_is_409_and_changes_nothing(client, poll, member, sent_events,
                                                             django_capture_on_commit_callbacks):
    nucleus, ribosome, _ = poll.options.all()
    do_vote_poll(poll, user=member, option=nucleus)
    do_close_poll(poll)
    login(client, member)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_poll_vote(client, poll, ribosome)
    assert response.status_code == 409
    assert "closed" in response.content.decode()
    assert PollVote.objects.get(user=member).option == nucleus
    assert sent_events == []


def test_poll_close_pushes_closed_poll_on_both_channels(client, poll, instructor, member, sent_events,
                                                        django_capture_on_commit_callbacks):
    do_vote_poll(poll, user=member, option=poll.options.first())
    login(client, instructor)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("qa:poll_close", args=[poll.pk]), headers=HX).status_code == 204
    poll.refresh_from_db()
    assert poll.state == Poll.State.CLOSED
    assert poll.closed_at is not None
    assert [(channel, event) for channel, event, _ in sent_events] == [
        (f"stream-{poll.stream_id}", "poll_changed"),
        (f"stream_manage-{poll.stream_id}", "poll_changed"),
    ]
    for _, _, fragment in sent_events:
        assert f'id="poll-{poll.pk}"' in fragment
        assert 'hx-swap-oob="true"' in fragment
        assert "Closed" in fragment
        assert "Close poll" not in fragment
        assert "poll-choice\"" not in fragment  # no vote buttons left
        assert poll_figures(fragment)[poll.options.first().pk] == (1, 100)


def test_poll_close_twice_keeps_first_close_time(poll):
    do_close_poll(poll)
    closed_at = Poll.objects.get(pk=poll.pk).closed_at
    do_close_poll(poll)
    assert Poll.objects.get(pk=poll.pk).closed_at == closed_at


def test_poll_shows_on_stream_page_with_results(client, poll, stream, course, member):
    nucleus = poll.options.get(text="Nucleus")
    for user in students(course, 3):
        do_vote_poll(poll, user=user, option=nucleus)
    do_vote_poll(poll, user=member, option=poll.options.get(text="Golgi"))
    login(client, member)
    page = client.get(reverse("livestream:detail", args=[stream.pk])).content.decode()
    assert poll_figures(page)[nucleus.pk] == (3, 75)
    assert f"&quot;{poll.pk}&quot;: {poll.options.get(text='Golgi').pk}" in page  # data-my-poll-votes


# --- After the stream: the unanswered questions go to the course room ---------------------------


@pytest.fixture
def ended_with_questions(stream, course, member, classmate, asker, instructor):
    popular = ask(stream, member, "Popular open question")
    quiet = ask(stream, asker, "Quiet anonymous question", anonymous=True)
    answered = ask(stream, classmate, "Answered question")
    dismissed = ask(stream, classmate, "Dismissed question")
    withdrawn = ask(stream, classmate, "Withdrawn question")
    merged = ask(stream, classmate, "Merged question")
    vote(popular, *students(course, 3))
    vote(answered, *students(course, 5))
    do_answer_question(answered)
    do_dismiss_question(dismissed)
    do_withdraw_question(withdrawn)
    do_merge_question(merged, into=popular)
    # Asked first, but with fewer votes: listed second.
    Question.objects.filter(pk=quiet.pk).update(created=timezone.now() - timedelta(minutes=5))
    return SimpleNamespace(popular=popular, quiet=quiet)


def course_messages(course):
    return Message.objects.filter(room__course=course, room__kind=Room.Kind.COURSE)


def test_end_stream_posts_one_summary_to_a_new_general_room(stream, course, instructor, ended_with_questions):
    assert not Room.objects.filter(course=course, kind=Room.Kind.COURSE).exists()
    do_end_stream(stream, actor=instructor)
    [message] = course_messages(course)
    assert (message.room.name, message.room.kind) == ("General", Room.Kind.COURSE)
    assert message.author == instructor
    lines = message.body.splitlines()
    assert "Cell biology" in lines[0]
    assert lines[1:] == ["• Popular open question (3 votes)", "• Quiet anonymous question (0 votes)"]
    for absent in ("Answered", "Dismissed", "Withdrawn", "Merged", "Secretname", "Ana", "Ben"):
        assert absent not in message.body


def test_end_stream_posts_summary_to_the_first_course_room(stream, course, staff, ended_with_questions):
    first = RoomFactory(course=course, name="Announcements")
    RoomFactory(course=course, name="Off-topic")
    do_end_stream(stream, actor=staff)
    [message] = course_messages(course)
    assert message.room == first
    assert message.author == staff
    assert Room.objects.filter(course=course, kind=Room.Kind.COURSE).count() == 2


def test_end_stream_view_posts_summary_by_the_instructor_who_ended_it(client, stream, course, ended_with_questions):
    second = InstructorFactory(username="ivy")
    course.instructors.add(second)
    login(client, second)
    assert client.post(reverse("livestream:end", args=[stream.pk])).status_code == 302
    [message] = course_messages(course)
    assert message.author == second
    assert "Popular open question (3 votes)" in message.body


def test_end_stream_without_open_questions_posts_nothing(stream, course, instructor, member):
    answered = ask(stream, member, "Answered question")
    do_answer_question(answered)
    do_dismiss_question(ask(stream, member, "Dismissed question"))
    do_end_stream(stream, actor=instructor)
    assert not Message.objects.exists()
    assert not Room.objects.filter(course=course, kind=Room.Kind.COURSE).exists()


def test_end_stream_summary_pushes_the_message_to_the_room(stream, course, instructor, ended_with_questions,
                                                           sent_events, django_capture_on_commit_callbacks):
    room = RoomFactory(course=course, name="General")
    with django_capture_on_commit_callbacks(execute=True):
        do_end_stream(stream, actor=instructor)
    [message] = course_messages(course)
    created = [data for channel, event, data in sent_events if (channel, event) == (f"room-{room.pk}", "message_created")]
    assert len(created) == 1
    assert f'id="message-{message.pk}"' in created[0]
    assert not any(shows_name(data) for _, _, data in sent_events)


# --- Times --------------------------------------------------------------------------------------


def test_question_offset_is_time_since_stream_start(stream, member):
    question = ask(stream, member, "When?")
    Question.objects.filter(pk=question.pk).update(created=stream.started_at + timedelta(minutes=7, seconds=3))
    question = Question.objects.get(pk=question.pk)
    assert question.offset == timedelta(minutes=7, seconds=3)
    assert question.offset == question.created - stream.started_at


def test_question_offset_is_none_before_stream_starts(course, member):
    upcoming = StreamFactory(course=course)
    assert ask(upcoming, member, "Early?").offset is None
