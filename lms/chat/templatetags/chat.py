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
