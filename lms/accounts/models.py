import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from lms.accounts.validators import printable, validate_printable_name

TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class User(AbstractUser):
    class Role(models.TextChoices):
        STUDENT = "student", _("Student")
        INSTRUCTOR = "instructor", _("Instructor")

    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.STUDENT)
    # Names are shown to others, in pages and in calendar files: printable characters only.
    first_name = models.CharField(_("first name"), max_length=150, blank=True, validators=[validate_printable_name])
    last_name = models.CharField(_("last name"), max_length=150, blank=True, validators=[validate_printable_name])
    display_name = models.CharField(
        _("display name"), max_length=150, blank=True, validators=[validate_printable_name]
    )
    timezone = models.CharField(
        _("time zone"), max_length=64, choices=TIMEZONE_CHOICES, default="UTC"
    )
    # Off: others don't see when this person has read, and they see no receipts either.
    send_read_receipts = models.BooleanField(_("send read receipts"), default=True)
    # The secret in the user's calendar feed URL (calendar apps send no cookie); empty: revoked.
    calendar_token = models.CharField(max_length=64, blank=True, db_index=True, editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """What other people see: the display name, else the full name, else the username."""
        return printable(self.display_name or self.get_full_name()) or self.get_username()

    def get_role_display(self) -> str:
        """The label beside names: staff (who can do everything) say so, whatever their role."""
        if self.is_staff:
            return _("Staff")
        return self.Role(self.role).label if self.role in self.Role.values else self.role

    @property
    def is_instructor(self) -> bool:
        return self.role == self.Role.INSTRUCTOR or self.is_staff
