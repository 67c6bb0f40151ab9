from django import template

from lms.chat.text import message_preview

register = template.Library()


@register.filter
def preview(body: str, length: int = 80) -> str:
    """A message as one line of plain text (the template escapes it)."""
    return message_preview(body or "", length)


@register.simple_tag
def reaction_choices(which: str = "all") -> tuple[str, ...]:
    """The reactions offered: "quick" ones in every message's toolbar, "all" in the picker.
    A tag, not a context variable: pushed fragments have no context processors."""
    from lms.chat.models import QUICK_REACTIONS, REACTIONS

    return QUICK_REACTIONS if which == "quick" else REACTIONS


AVATAR_COLOURS = 12  # .avatar-0 … .avatar-11 in messaging.css, each dark enough for white text


@register.filter
def avatar_colour(user_id) -> int:
    """A colour for a person, the same on every page: spread so that neighbours' ids differ."""
    try:
        return (int(user_id) * 7) % AVATAR_COLOURS
    except (TypeError, ValueError):
        return 0


@register.filter
def initials(name: str) -> str:
    """Up to two letters for an avatar: of the first and last words ("Ana María Ruiz" → "AR")."""
    words = [w for w in (name or "").split() if w[0].isalnum()]
    if not words:
        return "?"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()
