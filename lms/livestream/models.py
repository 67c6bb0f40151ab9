import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lms.courses.models import Course


def new_room_key() -> str:
    """The Jitsi room name's secret part: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


class StreamQuerySet(models.QuerySet):
    def for_member(self, user) -> "StreamQuerySet":
        from lms.courses.models import Course

        return self.filter(course__in=Course.objects.for_member(user).values("pk"))

    def live(self) -> "StreamQuerySet":
        return self.filter(state=Stream.State.LIVE).order_by("started_at")

    def upcoming(self) -> "StreamQuerySet":
        return self.filter(state=Stream.State.SCHEDULED).order_by("starts_at")

    def past(self) -> "StreamQuerySet":
        return self.filter(state=Stream.State.ENDED).order_by("-ended_at")


class Stream(models.Model):
    class State(models.TextChoices):
        SCHEDULED = "scheduled", _("Upcoming")
        LIVE = "live", _("Live")
        ENDED = "ended", _("Ended")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="streams", verbose_name=_("course"))
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True, max_length=5000)
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    chat_enabled = models.BooleanField(_("live chat"), default=True)
    qa_enabled = models.BooleanField(_("Q&A"), default=True)
    recording_enabled = models.BooleanField(_("recording"), default=False)

    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.SCHEDULED)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended"), null=True, blank=True)
    room_key = models.CharField(max_length=64, unique=True, default=new_room_key, editable=False)
    chat_room = models.OneToOneField(
        "chat.Room", on_delete=models.SET_NULL, null=True, blank=True, related_name="stream", editable=False
    )
    peak_viewers = models.PositiveIntegerField(_("peak viewers"), default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(_("created"), default=timezone.now)

    objects = StreamQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("livestream")
        verbose_name_plural = _("livestreams")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="stream_ends_after_it_starts"),
        ]

    def __str__(self) -> str:
        return f"{self.course.code}: {self.title}"

    @property
    def is_live(self) -> bool:
        return self.state == self.State.LIVE

    @property
    def is_scheduled(self) -> bool:
        return self.state == self.State.SCHEDULED

    @property
    def is_ended(self) -> bool:
        return self.state == self.State.ENDED

    @property
    def jitsi_room(self) -> str:
        """The Jitsi room: readable prefix, secret key. Never shown outside the course."""
        return f"lms-{self.pk}-{self.room_key}"


class StreamViewer(models.Model):
    """Who has opened a stream's page: one row per person, for "unique viewers"."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="viewers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    first_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "user"], name="one_viewer_row_per_person")]


def recording_upload_to(instance, filename: str) -> str:
    return f"recordings/{instance.stream_id}/{filename}"


class Recording(models.Model):
    """A past stream's recording: an uploaded file (through the storage API, so a deployer can
    switch to S3-compatible storage) or a link (http/https only)."""

    stream = models.OneToOneField(Stream, on_delete=models.CASCADE, related_name="recording")
    file = models.FileField(_("video file"), upload_to=recording_upload_to, blank=True)
    url = models.URLField(_("video link"), blank=True, max_length=1000)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    added = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(file="") & ~Q(url="")) | (~Q(file="") & Q(url="")), name="recording_is_a_file_or_a_link"
            ),
        ]

    def __str__(self) -> str:
        return f"Recording of {self.stream}"

    @property
    def source(self) -> str:
        return self.file.url if self.file else self.url


class ViewerSample(models.Model):
    """Viewers now, one point per minute while a stream is live (the last count of that minute)."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="viewer_samples")
    minute = models.DateTimeField()
    viewers = models.PositiveIntegerField()

    class Meta:
        ordering = ["minute"]
        constraints = [models.UniqueConstraint(fields=["stream", "minute"], name="one_sample_per_minute")]
