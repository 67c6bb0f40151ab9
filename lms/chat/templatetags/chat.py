from django import template

from lms.chat.text import message_preview

register = template.Library()


@register.filter
def preview(body: str, length: int = 80) -> str:
    """A message as one line of plain text (the template escapes it)."""
    return message_preview(body or "", length)
