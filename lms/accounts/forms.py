from django import forms
from django.utils.translation import gettext_lazy as _

from lms.accounts.models import User


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["display_name", "timezone", "send_read_receipts"]
        help_texts = {
            "display_name": _("What others see in chat and Q&A. Leave it empty to use your full name."),
            "timezone": _("Stream times are shown in this zone."),
            "send_read_receipts": _("When this is off, others don't see when you have read, and you don't see theirs."),
        }
