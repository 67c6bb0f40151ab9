"""`{% when value %}`: a <time> in the site's formats (see lms/accounts/dates.py)."""

from django import template
from django.utils.html import format_html

from lms.accounts.dates import STYLES, format_full, format_neutral, format_when

register = template.Library()


@register.simple_tag(takes_context=True)
def when(context, value, style: str = "datetime", css: str = ""):
    """`<time datetime data-local=style>` written for the reader when the page has one (a
    request), else neutral (a pushed fragment); app.js writes it again in the reader's zone."""
    if not value:
        return ""
    if style not in STYLES:
        raise template.TemplateSyntaxError(f"when: unknown style {style!r}")
    if context.get("request") is not None:
        text, title = format_when(value, style), format_full(value)
    else:
        text, title = format_neutral(value, style), format_neutral(value)
    return format_html(
        '<time datetime="{}" data-local="{}" title="{}"{}>{}</time>',
        value.isoformat(), style, title, format_html(' class="{}"', css) if css else "", text,
    )
