from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lms.chat.models import MESSAGE_MAX_LENGTH
from lms.chat.text import check_message_text


class MessageTextField(forms.CharField):
    """Message text: checked by lms.chat.text (length, control characters, Unicode)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Message"))
        kwargs.setdefault("strip", False)
        kwargs.setdefault("required", False)  # check_message_text says "write a message first"
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2}))
        super().__init__(**kwargs)

    def clean(self, value):
        return check_message_text(super().clean(value) or "", max_length=MESSAGE_MAX_LENGTH)


class MessageForm(forms.Form):
    body = MessageTextField()
    reply_to = forms.IntegerField(required=False, widget=forms.HiddenInput)
    client_token = forms.UUIDField(required=False, widget=forms.HiddenInput)


class EditMessageForm(forms.Form):
    body = MessageTextField(label=_("Edit message"))


class RoomForm(forms.Form):
    name = forms.CharField(label=_("Room name"), max_length=80)

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError(_("Give the room a name."))
        if any(ord(c) < 32 for c in name):
            raise forms.ValidationError(_("Remove the control characters from the name."))
        return name


class MuteForm(forms.Form):
    DURATIONS = {
        "10m": timedelta(minutes=10),
        "1h": timedelta(hours=1),
        "1d": timedelta(days=1),
        "7d": timedelta(days=7),
        "lifted": None,
    }
    user = forms.IntegerField(widget=forms.HiddenInput)
    duration = forms.ChoiceField(
        label=_("Mute for"),
        choices=[("10m", _("10 minutes")), ("1h", _("1 hour")), ("1d", _("1 day")),
                 ("7d", _("7 days")), ("lifted", _("until lifted"))],
        initial="1h",
    )

    def until(self):
        length = self.DURATIONS[self.cleaned_data["duration"]]
        return timezone.now() + length if length else None


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search this room"), max_length=200, required=False)
