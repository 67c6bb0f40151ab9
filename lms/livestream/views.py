from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from lms.chat.views import chat_panel_context
from lms.courses.models import Course
from lms.livestream.access import (
    access_stream,
    access_stream_to_manage,
    can_manage_stream,
    courses_to_stream_in,
    is_stream_host,
)
from lms.livestream.actions import (
    StreamStateError,
    do_attach_recording,
    do_create_stream,
    do_end_stream,
    do_note_viewer,
    do_start_stream,
    do_update_stream,
)
from lms.livestream.forms import RecordingForm, StreamForm
from lms.livestream.transcript import chapters, timeline, to_csv, to_markdown, viewers_chart
from lms.livestream.jitsi import meeting_for
from lms.livestream.models import Recording, Stream
from lms.qa.views import qa_context
from lms.realtime import channel, event_stream_url, occupancy


def _sections(user) -> dict:
    streams = Stream.objects.for_member(user).select_related("course")
    return {
        "live": list(streams.live()),
        "upcoming": list(streams.upcoming()),
        "past": list(streams.past()[:30]),
        "can_schedule": courses_to_stream_in(user).exists(),
    }


@require_GET
@login_required
def stream_list(request):
    if request.htmx:
        return render(request, "livestream/list.html#sections", _sections(request.user))
    courses = Course.objects.for_member(request.user).values_list("pk", flat=True)[:30]
    stream_url = event_stream_url([channel("user", request.user.pk)] + [channel("course", pk) for pk in courses])
    return render(request, "livestream/list.html", {"stream_url": stream_url, **_sections(request.user)})


@require_http_methods(["GET", "POST"])
@login_required
def stream_create(request):
    courses = courses_to_stream_in(request.user)
    if not courses.exists():
        raise PermissionDenied
    form = StreamForm(request.POST or None, courses=courses)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        stream = do_create_stream(data.pop("course"), creator=request.user, **data)
        return redirect("livestream:manage", stream_id=stream.pk)
    return render(request, "livestream/form.html", {"form": form, "stream": None})


@require_http_methods(["GET", "POST"])
@login_required
def stream_edit(request, stream_id: int):
    stream = access_stream_to_manage(request.user, stream_id)
    form = StreamForm(request.POST or None, instance=stream, courses=courses_to_stream_in(request.user))
    if request.method == "POST" and form.is_valid():
        do_update_stream(stream, **form.cleaned_data)
        return redirect("livestream:manage", stream_id=stream.pk)
    return render(request, "livestream/form.html", {"form": form, "stream": stream})


def _stage_context(request, stream: Stream) -> dict:
    host = is_stream_host(request.user, stream)
    return {
        "stream": stream,
        "is_host": host,
        "can_manage": host or can_manage_stream(request.user, stream.pk),
        "meeting": meeting_for(stream, request.user, is_host=host) if stream.is_live else None,
    }


@require_GET
@login_required
def stream_detail(request, stream_id: int):
    stream = access_stream(request.user, stream_id)
    stage = _stage_context(request, stream)
    # Instructors get the presenter view: the Q&A queue with askers' names and the polls beside
    # the video, from the control panel's channel (which carries everything the viewers' does).
    presenter = stage["can_manage"] and stream.qa_enabled
    channels = [channel("stream_manage" if presenter else "stream", stream.pk), channel("user", request.user.pk)]
    chat = stream.chat_room if stream.chat_enabled else None
    if chat is not None:
        channels.append(channel("room", chat.pk))
    stream_url = event_stream_url(channels)  # before anything the page shows is read
    do_note_viewer(stream, user=request.user)
    context = {"stream_url": stream_url, "presenter": presenter, **stage, **_viewers(stream)}
    if chat is not None:
        context.update(chat_panel_context(request, chat))
    if stream.qa_enabled:
        context.update(qa_context(request, stream))
    return render(request, "livestream/detail.html", context)


@require_GET
@login_required
def stream_stage(request, stream_id: int):
    """The video area, re-fetched when the stream starts or ends, with the regions that change
    with it (the viewer count, the Q&A) swapped out of band."""
    stream = access_stream(request.user, stream_id)
    context = {**_stage_context(request, stream), **_viewers(stream)}
    if stream.qa_enabled:
        context.update(qa_context(request, stream))
    return render(request, "livestream/detail.html#stage-update", context)


def _viewers(stream: Stream) -> dict:
    """The count as the page is drawn; updates arrive over the event stream."""
    viewers = occupancy(channel("stream", stream.pk))
    # The peak is written a moment after the count rises: never show fewer than are watching.
    return {"viewers": viewers, "peak": max(stream.peak_viewers, viewers or 0)}


def _panel_context(stream: Stream) -> dict:
    return {
        "stream": stream,
        "chart": viewers_chart(stream),
        "recording_form": RecordingForm(),
        "unique_viewers": stream.viewers.count(),
        "message_count": stream.chat_room.messages.filter(deleted__isnull=True).count() if stream.chat_room_id else 0,
    }


@require_GET
@login_required
def stream_manage(request, stream_id: int):
    stream = access_stream_to_manage(request.user, stream_id)
    channels = [channel("stream_manage", stream.pk), channel("user", request.user.pk)]
    if stream.chat_room_id:
        channels.append(channel("room", stream.chat_room_id))
    context = {"stream_url": event_stream_url(channels), **_panel_context(stream), **_viewers(stream)}
    if stream.chat_room_id:
        context.update(chat_panel_context(request, stream.chat_room))
    context.update(qa_context(request, stream))
    return render(request, "livestream/manage.html", context)


@require_GET
@login_required
def stream_stats(request, stream_id: int):
    stream = access_stream_to_manage(request.user, stream_id)
    return render(request, "livestream/manage.html#stats", _panel_context(stream))


def _after_state_change(request, stream: Stream):
    url = reverse("livestream:manage", args=[stream.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@login_required
def stream_start(request, stream_id: int):
    stream = access_stream_to_manage(request.user, stream_id)
    try:
        do_start_stream(stream, actor=request.user)
    except StreamStateError as error:
        messages.error(request, _(str(error)))
    return _after_state_change(request, stream)


@require_POST
@login_required
def stream_end(request, stream_id: int):
    stream = access_stream_to_manage(request.user, stream_id)
    try:
        do_end_stream(stream, actor=request.user)
    except StreamStateError as error:
        messages.error(request, _(str(error)))
    return _after_state_change(request, stream)


def _recording_or_404(stream: Stream):
    from django.http import Http404

    recording = getattr(stream, "recording", None)
    if recording is None:
        raise Http404
    return recording


@require_POST
@login_required
def recording_attach(request, stream_id: int):
    stream = access_stream_to_manage(request.user, stream_id)
    if not stream.is_ended:
        messages.error(request, _("Attach a recording once the stream has ended."))
        return redirect("livestream:manage", stream_id=stream.pk)
    form = RecordingForm(request.POST, request.FILES)
    if not form.is_valid():
        context = {"stream_url": None, **_panel_context(stream), **_viewers(stream), "recording_form": form}
        context.update(qa_context(request, stream))
        return render(request, "livestream/manage.html", context, status=400)
    page_url = request.build_absolute_uri(reverse("livestream:recording", args=[stream.pk]))
    replacing = Recording.objects.filter(stream=stream).exists()
    do_attach_recording(stream, actor=request.user, file=form.cleaned_data["file"], url=form.cleaned_data["url"], page_url=page_url)
    if replacing:
        messages.success(request, _("The recording is replaced. Its page shows the new one."))
    else:
        messages.success(request, _("The recording is attached, and the course has been told."))
    return redirect("livestream:manage", stream_id=stream.pk)


@require_GET
@login_required
def recording_page(request, stream_id: int):
    stream = access_stream(request.user, stream_id)
    recording = _recording_or_404(stream)
    source = reverse("livestream:recording_file", args=[stream.pk]) if recording.file else recording.url
    context = {
        "stream": stream,
        "recording": recording,
        "source": source,
        "items": timeline(stream),
        "chapters": chapters(stream),
        "chart": viewers_chart(stream),
        "can_manage": can_manage_stream(request.user, stream.pk),
    }
    return render(request, "livestream/recording.html", context)


@require_GET
@login_required
def recording_file(request, stream_id: int):
    """An uploaded recording, for course members only (never a public media URL)."""
    from django.http import FileResponse

    stream = access_stream(request.user, stream_id)
    recording = _recording_or_404(stream)
    if not recording.file:
        raise PermissionDenied
    return FileResponse(recording.file.open("rb"), content_type=_video_type(recording.file.name))


def _video_type(name: str) -> str:
    import mimetypes

    return mimetypes.guess_type(name)[0] or "video/mp4"


@require_GET
@login_required
def transcript_export(request, stream_id: int, fmt: str):
    """The chat and Q&A with their times, for instructors: CSV or Markdown. Anonymous askers
    stay anonymous unless `?names=1`."""
    from django.http import HttpResponse

    stream = access_stream_to_manage(request.user, stream_id)
    items = timeline(stream, names=request.GET.get("names") == "1")
    slug = f"stream-{stream.pk}-transcript"
    if fmt == "csv":
        response = HttpResponse(to_csv(stream, items), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(to_markdown(stream, items), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slug}.{fmt}"'
    return response
