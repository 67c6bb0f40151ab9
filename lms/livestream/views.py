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
    do_create_stream,
    do_end_stream,
    do_note_viewer,
    do_start_stream,
    do_update_stream,
)
from lms.livestream.forms import StreamForm
from lms.livestream.jitsi import meeting_for
from lms.livestream.models import Stream
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
    channels = [channel("stream", stream.pk), channel("user", request.user.pk)]
    chat = stream.chat_room if stream.chat_enabled else None
    if chat is not None:
        channels.append(channel("room", chat.pk))
    stream_url = event_stream_url(channels)  # before anything the page shows is read
    do_note_viewer(stream, user=request.user)
    context = {"stream_url": stream_url, **_stage_context(request, stream), **_viewers(stream)}
    if chat is not None:
        context.update(chat_panel_context(request, chat))
    if stream.qa_enabled:
        context.update(qa_context(request, stream))
    return render(request, "livestream/detail.html", context)


@require_GET
@login_required
def stream_stage(request, stream_id: int):
    """The video area alone: pages re-fetch it when the stream starts or ends."""
    stream = access_stream(request.user, stream_id)
    return render(request, "livestream/detail.html#stage", _stage_context(request, stream))


def _viewers(stream: Stream) -> dict:
    """The count as the page is drawn; updates arrive over the event stream."""
    return {"viewers": occupancy(channel("stream", stream.pk)), "peak": stream.peak_viewers}


def _panel_context(stream: Stream) -> dict:
    return {
        "stream": stream,
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
