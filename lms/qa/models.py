from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lms.livestream.models import Stream

QUESTION_MAX_LENGTH = 300


class QuestionQuerySet(models.QuerySet):
    def visible(self) -> "QuestionQuerySet":
        """What the Q&A list shows: not withdrawn, not dismissed, not merged away."""
        return self.filter(state__in=[Question.State.OPEN, Question.State.ANSWERED], merged_into__isnull=True)

    def dismissed(self) -> "QuestionQuerySet":
        """Dismissed by an instructor (not merged away), the latest first: the queue's third tab."""
        return self.filter(state=Question.State.DISMISSED, merged_into__isnull=True).select_related("author").order_by("-pk")

    def ranked(self) -> "QuestionQuerySet":
        """Pinned first, then open before answered, then most votes, then oldest."""
        # By state, not by answered_at: NULLs sort first on SQLite but last on PostgreSQL.
        answered = Case(When(state=Question.State.ANSWERED, then=Value(1)), default=Value(0))
        return self.select_related("author").order_by("-pinned", answered, "-votes_count", "created", "pk")


class Question(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        ANSWERED = "answered", _("Answered")
        DISMISSED = "dismissed", _("Dismissed")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        MERGED = "merged", _("Merged")

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="questions")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="questions")
    text = models.TextField(_("question"), max_length=QUESTION_MAX_LENGTH)
    # Hidden from other students; instructors still see who asked (control panel only).
    anonymous = models.BooleanField(_("ask anonymously"), default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    pinned = models.BooleanField(default=False)
    merged_into = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="merged_questions"
    )
    # Kept equal to the number of Vote rows (updated in the same transaction as a vote).
    votes_count = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    client_token = models.UUIDField(null=True, blank=True, editable=False)

    objects = QuestionQuerySet.as_manager()

    class Meta:
        ordering = ["-votes_count", "created"]
        constraints = [
            models.UniqueConstraint(fields=["author", "client_token"], name="one_question_per_client_token"),
            models.UniqueConstraint(
                fields=["stream"], condition=Q(pinned=True), name="one_pinned_question_per_stream"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:60]

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    @property
    def offset(self):
        """Time from the stream's start, for the recording's transcript."""
        started = self.stream.started_at
        return self.created - started if started else None


class Vote(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="question_votes")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["question", "user"], name="one_vote_per_member")]


class Poll(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="polls")
    question = models.CharField(_("poll question"), max_length=300)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.question

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN


class PollOption(models.Model):
    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="options")
    text = models.CharField(max_length=120)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["poll", "position"], name="unique_option_position")]

    def __str__(self) -> str:
        return self.text


class PollVote(models.Model):
    """One per member per poll; changing one's mind moves it while the poll is open."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="votes")
    option = models.ForeignKey(PollOption, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["poll", "user"], name="one_poll_vote_per_member")]
