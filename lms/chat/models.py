from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lms.courses.models import Course

MESSAGE_MAX_LENGTH = 4000
PAGE_SIZE = 50


class RoomQuerySet(models.QuerySet):
    def for_member(self, user) -> "RoomQuerySet":
        """Rooms `user` may read: their courses' rooms (every course's for staff) and their own
        direct conversations (never other people's, not even for staff)."""
        if not user.is_authenticated:
            return self.none()
        courses = Course.objects.for_member(user).values("pk")
        directs = Room.participants.through.objects.filter(user=user).values("room_id")
        return self.filter(
            Q(kind__in=[Room.Kind.COURSE, Room.Kind.STREAM], course__in=courses)
            | Q(kind=Room.Kind.DIRECT, pk__in=directs)
        )

    def direct_between(self, user, other) -> "RoomQuerySet":
        """The direct conversation of two people, if they have one (its key is their sorted ids)."""
        low, high = sorted([user.pk, other.pk])
        return self.filter(direct_key=f"{low}-{high}")

    def listed(self) -> "RoomQuerySet":
        """Rooms chat home lists: a livestream's chat lives on its stream page."""
        return self.exclude(kind=Room.Kind.STREAM)


class Room(models.Model):
    class Kind(models.TextChoices):
        COURSE = "course", _("Course room")
        DIRECT = "direct", _("Direct conversation")
        STREAM = "stream", _("Livestream chat")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.COURSE)
    course = models.ForeignKey(
        Course, on_delete=models.CASCADE, null=True, blank=True, related_name="rooms", verbose_name=_("course")
    )
    name = models.CharField(_("name"), max_length=80, blank=True)
    participants = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="direct_rooms", verbose_name=_("participants")
    )
    # "<smaller user id>-<larger user id>" for direct conversations: one per pair.
    direct_key = models.CharField(max_length=41, null=True, blank=True, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(_("created"), auto_now_add=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["course__code", "name", "pk"]
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        constraints = [
            models.UniqueConstraint(fields=["course", "name"], name="unique_room_name_per_course"),
            models.CheckConstraint(
                condition=Q(kind__in=["course", "stream"], course__isnull=False)
                | Q(kind="direct", course__isnull=True),
                name="course_rooms_have_a_course",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.DIRECT:
            return " & ".join(p.name for p in self.participants.all()) or f"Direct #{self.pk}"
        return f"{self.course.code} · {self.name}"

    @property
    def is_direct(self) -> bool:
        return self.kind == self.Kind.DIRECT

    def title_for(self, user) -> str:
        """What `user` calls this room: its name, or the other person's name."""
        if not self.is_direct:
            return self.name
        others = [p for p in self.participants.all() if p.pk != user.pk]
        return others[0].name if others else user.name


class MessageQuerySet(models.QuerySet):
    def with_related(self) -> "MessageQuerySet":
        return self.select_related("author", "reply_to", "reply_to__author")

    def page_before(self, before_id: int | None, size: int = PAGE_SIZE) -> list["Message"]:
        """Up to `size` messages older than `before_id` (the newest if None), oldest first.
        Keyset pagination by id: stable while new messages arrive."""
        queryset = self.with_related().order_by("-pk")
        if before_id is not None:
            queryset = queryset.filter(pk__lt=before_id)
        return list(reversed(queryset[:size]))


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages", verbose_name=_("room"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages", verbose_name=_("author")
    )
    body = models.TextField(_("text"), max_length=MESSAGE_MAX_LENGTH)
    # Rendered and sanitised once, when written; shown as is everywhere.
    body_html = models.TextField(editable=False)
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies", verbose_name=_("reply to")
    )
    created = models.DateTimeField(_("sent"), default=timezone.now, db_index=True)
    edited = models.DateTimeField(_("edited"), null=True, blank=True)
    deleted = models.DateTimeField(_("deleted"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Sent by the page with each post: a retried post is stored once.
    client_token = models.UUIDField(null=True, blank=True, editable=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["pk"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(
                fields=["author", "client_token"], name="one_message_per_client_token"
            )
        ]

    def __str__(self) -> str:
        return f"{self.author} in {self.room}: {self.body[:40]}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted is not None

    @property
    def reaction_groups(self) -> list:
        """Its reactions by emoji (`lms.chat.selectors.annotate_reactions`): set for a whole
        page at once; a message rendered on its own (an edit, a pushed fragment) reads its own."""
        if "_reaction_groups" not in self.__dict__:
            from lms.chat.selectors import annotate_reactions

            annotate_reactions([self])
        return self._reaction_groups

    @reaction_groups.setter
    def reaction_groups(self, groups: list) -> None:
        self._reaction_groups = groups


class MuteQuerySet(models.QuerySet):
    def active(self) -> "MuteQuerySet":
        now = timezone.now()
        return self.filter(lifted__isnull=True).filter(Q(until__isnull=True) | Q(until__gt=now))


class Mute(models.Model):
    """A member muted in every room of a course, for a time or until lifted."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="mutes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mutes")
    muted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField(null=True, blank=True)
    lifted = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    objects = MuteQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.user} muted in {self.course.code}"


class ModerationEntry(models.Model):
    class Action(models.TextChoices):
        DELETE = "delete", _("deleted a message")
        MUTE = "mute", _("muted")
        UNMUTE = "unmute", _("lifted the mute of")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="moderation_log")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    target = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    room = models.ForeignKey(Room, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # What was deleted, or how long the mute lasts: the log stays readable after the fact.
    detail = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created", "-pk"]
        verbose_name = _("moderation log entry")
        verbose_name_plural = _("moderation log")

    def __str__(self) -> str:
        return f"{self.actor} {self.get_action_display()} {self.target}"


class ReadMarker(models.Model):
    """How far a member has read a room: one row per member per room, moved forward in batches
    (never a row per message per reader). Unread counts and receipts are computed from it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="read_markers")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="read_markers")
    last_read_id = models.BigIntegerField(default=0)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="one_read_marker_per_member")]


class NotificationQuerySet(models.QuerySet):
    def unread(self) -> "NotificationQuerySet":
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    class Kind(models.TextChoices):
        MENTION = "mention", _("mentioned you")
        ALL = "all", _("mentioned everyone")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MENTION)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="notifications")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-pk"]
        constraints = [models.UniqueConstraint(fields=["user", "message"], name="one_notification_per_message")]


# The reactions offered: the first few in every message's toolbar, all of them in the picker.
# A fixed set, checked by the server: no free text hides in a reaction.
QUICK_REACTIONS = ("👍", "❤️", "😂", "🎉")
REACTIONS = QUICK_REACTIONS + (
    "😮", "🙏", "👏", "🔥", "✅", "❌", "👀", "🤔", "😢", "😊", "🙌", "💯", "➕", "❓", "🚀", "👋",
)


class Reaction(models.Model):
    """One person's emoji on one message: at most one of each emoji per person."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=16)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["message", "user", "emoji"], name="one_reaction_per_person_and_emoji")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.emoji} on {self.message_id}"
