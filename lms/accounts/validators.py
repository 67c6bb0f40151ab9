"""Checks of what people call themselves."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Control characters (line feeds, tabs, NUL…), line and paragraph separators, and the
# bidirectional overrides and isolates that can make a name read as another one. Joiners
# (U+200C, U+200D) stay: several scripts and emoji need them.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def validate_printable_name(value: str) -> None:
    if UNPRINTABLE.search(value):
        raise ValidationError(
            _("Names cannot contain line breaks, tabs or other control characters."), code="unprintable"
        )


def printable(value: str) -> str:
    """`value` with every unprintable character made a space (for names stored before the check)."""
    return UNPRINTABLE.sub(" ", value).strip()
