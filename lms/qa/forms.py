from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from lms.chat.text import check_message_text
from lms.qa.models import QUESTION_MAX_LENGTH


class QuestionForm(forms.Form):
    text = forms.CharField(label=_("Question"), required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))
    anonymous = forms.BooleanField(label=_("Ask anonymously"), required=False)
    client_token = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def clean_text(self):
        # Same text rules as chat, shorter.
        try:
            return check_message_text(self.cleaned_data["text"] or "", max_length=QUESTION_MAX_LENGTH)
        except ValidationError as error:
            if error.code == "empty":
                raise ValidationError(_("Write your question first."), code="empty") from None
            raise


class PollForm(forms.Form):
    question = forms.CharField(label=_("Poll question"), max_length=300)
    options = forms.CharField(
        label=_("Options, one per line (2 to 6)"), widget=forms.Textarea(attrs={"rows": 4}),
    )

    def clean_question(self):
        question = " ".join(self.cleaned_data["question"].split())
        if not question:
            raise ValidationError(_("Write the poll's question."))
        return question

    def clean_options(self):
        options = [" ".join(line.split()) for line in self.cleaned_data["options"].splitlines()]
        options = [o for o in options if o]
        if len(options) < 2 or len(options) > 6:
            raise ValidationError(_("Give 2 to 6 options, one per line (you gave %(count)s).") % {"count": len(options)})
        if any(len(o) > 120 for o in options):
            raise ValidationError(_("Keep each option under 120 characters."))
        if len({o.casefold() for o in options}) != len(options):
            raise ValidationError(_("Each option must be different."))
        return options
