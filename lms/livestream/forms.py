from django import forms
from django.utils.translation import gettext_lazy as _

from lms.livestream.models import Stream

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class StreamForm(forms.ModelForm):
    """Times are entered and shown in the user's time zone (activated per request); stored in UTC."""

    class Meta:
        model = Stream
        fields = ["course", "title", "description", "starts_at", "ends_at", "chat_enabled", "qa_enabled", "recording_enabled"]
        widgets = {
            "starts_at": DATETIME_INPUT,
            "ends_at": DATETIME_INPUT,
            "description": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, courses, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["course"].queryset = courses
        self.fields["course"].empty_label = None
        for name in ("starts_at", "ends_at"):
            self.fields[name].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]

    def clean_title(self):
        title = " ".join(self.cleaned_data["title"].split())
        if not title:
            raise forms.ValidationError(_("Give the stream a title."))
        return title

    def clean(self):
        cleaned = super().clean()
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", _("The end must be after the start."))
        return cleaned


VIDEO_TYPES = {"video/mp4", "video/webm", "video/ogg", "video/quicktime", "video/x-m4v"}
VIDEO_EXTENSIONS = (".mp4", ".webm", ".ogv", ".ogg", ".mov", ".m4v")


class RecordingForm(forms.Form):
    file = forms.FileField(label=_("Upload a video file"), required=False)
    url = forms.URLField(label=_("or link to a video"), required=False, max_length=1000, assume_scheme="https")

    def clean_file(self):
        from django.conf import settings
        from django.template.defaultfilters import filesizeformat

        upload = self.cleaned_data.get("file")
        if not upload:
            return None
        name = upload.name.lower()
        if upload.content_type not in VIDEO_TYPES or not name.endswith(VIDEO_EXTENSIONS):
            raise forms.ValidationError(_("Upload a video: MP4, WebM, Ogg or QuickTime."))
        if upload.size > settings.RECORDING_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is too large: at most %(limit)s.") % {"limit": filesizeformat(settings.RECORDING_MAX_BYTES)}
            )
        return upload

    def clean_url(self):
        url = self.cleaned_data.get("url", "")
        if url and not url.lower().startswith(("https://", "http://")):
            raise forms.ValidationError(_("Link to an http or https address."))
        return url

    def clean(self):
        cleaned = super().clean()
        if not self.errors and bool(cleaned.get("file")) == bool(cleaned.get("url")):
            raise forms.ValidationError(_("Give either a video file or a link, not both or neither."))
        return cleaned
