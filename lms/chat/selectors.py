"""Reads that pages and pushed fragments share, so the two cannot drift."""

from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from lms.chat.models import Message, Reaction

# "who reacted" names this many people, then counts the rest.
REACTION_NAMES_SHOWN = 10


@dataclass
class ReactionGroup:
    emoji: str
    user_ids: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.user_ids)

    @property
    def users(self) -> str:
        """The reactors' ids, space-separated: the page's CSS picks the reader's own (`~=`)."""
        return " ".join(map(str, self.user_ids))

    @property
    def who(self) -> str:
        shown = self.names[:REACTION_NAMES_SHOWN]
        more = len(self.names) - len(shown)
        names = ", ".join(shown)
        if more:
            names = ngettext("%(names)s and %(count)d other", "%(names)s and %(count)d others", more) % {
                "names": names, "count": more,
            }
        return _("%(names)s reacted with %(emoji)s") % {"names": names, "emoji": self.emoji}


def annotate_reactions(messages: list[Message]) -> None:
    """Set `message.reaction_groups` on each message: its reactions by emoji, in the order the
    emoji were first used, each with who reacted. One query for all the messages."""
    groups: dict[int, dict[str, ReactionGroup]] = {m.pk: {} for m in messages}
    if groups:
        reactions = (
            Reaction.objects.filter(message_id__in=list(groups))
            .select_related("user")
            .only("message_id", "emoji", "user__id", "user__display_name", "user__first_name",
                  "user__last_name", "user__username")
            .order_by("pk")
        )
        for reaction in reactions:
            group = groups[reaction.message_id].setdefault(reaction.emoji, ReactionGroup(reaction.emoji))
            group.user_ids.append(reaction.user_id)
            group.names.append(reaction.user.name)
    for message in messages:
        message.reaction_groups = [] if message.is_deleted else list(groups[message.pk].values())
