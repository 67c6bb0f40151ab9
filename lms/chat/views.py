import uuid
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from lms.chat.access import (
    access_course_to_moderate,
    access_message,
    access_message_to_delete,
    access_message_to_edit,
    access_room,
    active_mute,
    can_message_directly,
    can_moderate_room,
    people_to_message,
)
from lms.chat.actions import (
    RateLimited,
    do_add_reaction,
    do_create_room,
    do_delete_message,
    do_edit_message,
    do_get_or_create_direct_room,
    do_mark_all_read,
    do_mark_notifications_read,
    do_mark_read,
    do_signal_typing,
    do_mute_member,
    do_post_message,
    do_remove_reaction,
    do_unmute_member,
    room_channel,
)
from lms.chat.forms import EditMessageForm, MessageForm, MuteForm, RoomForm, SearchForm
from lms.chat.models import PAGE_SIZE, REACTIONS, Message, ModerationEntry, Room
from lms.accounts.actions import online_ids
from lms.chat.actions import present_people, room_members
from lms.chat.receipts import annotate_receipts
from lms.chat.search import search_messages
from lms.chat.selectors import annotate_reactions
from lms.courses.models import Course
from lms import ratelimit
from lms.realtime import channel, event_stream_url, present_users

MAX_COURSE_CHANNELS = 20


def rooms_for_home(user) -> list[Room]:
    """The user's rooms, each with `last` (its newest message) and `title`, newest first."""
    newest = Message.objects.filter(room=OuterRef("pk")).order_by("-pk").values("pk")[:1]
    rooms = list(
        Room.objects.for_member(user)
        .listed()
        .select_related("course")
        .prefetch_related("participants")
        .annotate(last_id=Subquery(newest))
    )
    last = Message.objects.with_related().in_bulk([r.last_id for r in rooms if r.last_id])
    for room in rooms:
        room.last = last.get(room.last_id)
        room.title = room.title_for(user)
    rooms.sort(key=lambda r: (r.last.pk if r.last else 0, -r.pk), reverse=True)
    return rooms


def _home_channels(user) -> list[str]:
    """The user's own channel and their courses': every room's last message, live."""
    courses = Course.objects.for_member(user).values_list("pk", flat=True)
    return [channel("user", user.pk)] + [channel("course", pk) for pk in courses[: MAX_COURSE_CHANNELS]]


@require_GET
@login_required
def home(request):
    stream_url = event_stream_url(_home_channels(request.user))
    context = {
        "stream_url": stream_url,
        "rooms": rooms_for_home(request.user),
        "people": people_to_message(request.user),
        "teaching": Course.objects.for_instructor(request.user),
        "room_form": RoomForm(),
    }
    return render(request, "chat/home.html", context)


def _composer_context(request, room: Room, form: MessageForm | None = None, reply_to=None):
    return {
        "client_token": uuid.uuid4(),
        "room": room,
        "form": form or MessageForm(),
        "reply_to": reply_to,
        "mute": active_mute(request.user, room),
    }


def chat_panel_context(request, room: Room, *, around: str = "") -> dict:
    """What the message list and composer need, for the room page and a stream page's chat."""
    messages = room.messages
    if around.isdecimal():
        target = get_object_or_404(Message, pk=int(around), room=room)
        start = list(messages.filter(pk__lte=target.pk).order_by("-pk").values_list("pk", flat=True)[: PAGE_SIZE // 2])
        page = list(messages.with_related().filter(pk__gte=start[-1])[:500])
    else:
        page = messages.page_before(None)
    annotate_receipts(room, page)
    annotate_reactions(page)
    return {
        "room": room,
        "chat_messages": page,
        "has_older": bool(page) and messages.filter(pk__lt=page[0].pk).exists(),
        "can_moderate": can_moderate_room(request.user, room),
        **_composer_context(request, room),
    }


@require_GET
@login_required
def room_detail(request, room_id: int):
    room = access_room(request.user, room_id)
    # The stream resumes from here: read before the messages, so nothing falls in between.
    stream_url = event_stream_url([room_channel(room.pk), *_home_channels(request.user)])
    last = room.messages.order_by("-pk").values_list("pk", flat=True).first()
    if last:
        do_mark_read(room, user=request.user, last_id=last)  # opening a room reads it
    present = present_users([room_channel(room.pk)])[room_channel(room.pk)] | {request.user.pk}
    context = {
        **present_people(present),
        "online_ids": " ".join(map(str, online_ids([m.pk for m in room_members(room)]) | {request.user.pk})),
        **chat_panel_context(request, room, around=request.GET.get("around", "")),
        "title": room.title_for(request.user),
        "stream_url": stream_url,
        "search_form": SearchForm(),
        "rooms": rooms_for_home(request.user),
    }
    return render(request, "chat/room.html", context)


@require_GET
@login_required
def history(request, room_id: int):
    """An older page of messages, for the top of the list (loaded as the reader scrolls up)."""
    room = access_room(request.user, room_id)
    before = request.GET.get("before", "")
    if request.GET.get("latest"):  # the whole list again, after a gap too old to replay
        context = chat_panel_context(request, room)
        return render(request, "chat/room.html#history", context)
    if not before.isdecimal():
        return HttpResponse(_("Say which message to load history before."), status=400)
    page = room.messages.page_before(int(before))
    annotate_receipts(room, page)
    annotate_reactions(page)
    has_older = bool(page) and room.messages.filter(pk__lt=page[0].pk).exists()
    return render(request, "chat/room.html#history", {"room": room, "chat_messages": page, "has_older": has_older})


def _composer_response(request, room, form, status=200, reply_to=None, headers=None):
    response = render(
        request, "chat/room.html#composer", _composer_context(request, room, form, reply_to), status=status
    )
    for key, value in (headers or {}).items():
        response[key] = value
    return reswap(retarget(response, "#composer"), "outerHTML")


@require_POST
@login_required
def message_create(request, room_id: int):
    room = access_room(request.user, room_id)
    form = MessageForm(request.POST)
    reply_to = None
    if request.POST.get("reply_to", "").isdecimal():
        reply_to = room.messages.with_related().filter(pk=int(request.POST["reply_to"]), deleted__isnull=True).first()
    if active_mute(request.user, room):
        form.is_valid()
        form.add_error(None, _("You are muted in this course's rooms."))
        return _composer_response(request, room, form, reply_to=reply_to)
    if not form.is_valid():
        return _composer_response(request, room, form, reply_to=reply_to)
    wait = ratelimit.check("post", request.user, room.pk)
    if wait:
        form.add_error(None, _("Slow down: you can post again in %(seconds)s s.") % {"seconds": wait})
        return _composer_response(
            request, room, form, status=429, reply_to=reply_to, headers={"Retry-After": str(wait)}
        )
    do_post_message(
        room,
        author=request.user,
        body=form.cleaned_data["body"],
        reply_to=reply_to,
        client_token=form.cleaned_data["client_token"],
    )
    if not request.htmx:
        return redirect("chat:room", room_id=room.pk)
    return trigger_client_event(HttpResponse(status=204), "message-sent")


@require_GET
@login_required
def composer(request, room_id: int):
    """The message form again, replying to a message (or not); the text typed is kept."""
    room = access_room(request.user, room_id)
    reply_to = None
    if request.GET.get("reply_to", "").isdecimal():
        reply_to = room.messages.with_related().filter(pk=int(request.GET["reply_to"]), deleted__isnull=True).first()
    form = MessageForm(initial={"body": request.GET.get("body", "")[:5000]})
    return render(request, "chat/room.html#composer", _composer_context(request, room, form, reply_to))


@require_GET
@login_required
def message_detail(request, message_id: int):
    message = access_message(request.user, message_id)
    if not request.htmx:
        return redirect(reverse("chat:room", args=[message.room_id]) + f"?around={message.pk}#message-{message.pk}")
    return render(request, "chat/room.html#message", {"message": message})


@require_http_methods(["GET", "POST"])
@login_required
def message_edit(request, message_id: int):
    message = access_message_to_edit(request.user, message_id)
    form = EditMessageForm(request.POST or None, initial={"body": message.body})
    if request.method == "POST" and form.is_valid():
        if wait := ratelimit.check("edit", request.user):
            form.add_error("body", _("Slow down: you can edit again in %(seconds)s s.") % {"seconds": wait})
            response = render(request, "chat/room.html#message-edit", {"message": message, "form": form}, status=429)
            response["Retry-After"] = str(wait)
            return response
        do_edit_message(message, body=form.cleaned_data["body"])
        if not request.htmx:
            return redirect("chat:room", room_id=message.room_id)
        return HttpResponse(status=204)  # the edit arrives over the event stream
    return render(request, "chat/room.html#message-edit", {"message": message, "form": form})


@require_POST
@login_required
def message_delete(request, message_id: int):
    message = access_message_to_delete(request.user, message_id)
    if not message.is_deleted:
        if wait := ratelimit.check("delete", request.user):
            return ratelimit.refused(request, wait)
        do_delete_message(message, actor=request.user)
    if not request.htmx:
        return redirect("chat:room", room_id=message.room_id)
    return HttpResponse(status=204)


@require_POST
@login_required
def message_react(request, message_id: int):
    """Add (`op=add`) or take back (`op=remove`) the reader's `emoji` on a message. The new
    reactions bar arrives over the event stream, in every tab."""
    message = access_message(request.user, message_id)
    emoji, op = request.POST.get("emoji", ""), request.POST.get("op", "add")
    if emoji not in REACTIONS or op not in ("add", "remove") or message.is_deleted:
        return HttpResponse(_("Choose one of the offered reactions on a message that is still there."), status=400)
    if op == "add" and active_mute(request.user, message.room):
        return HttpResponse(_("You are muted in this course's rooms."), status=403)
    try:
        (do_add_reaction if op == "add" else do_remove_reaction)(message, user=request.user, emoji=emoji)
    except RateLimited as limited:
        response = HttpResponse(_("Slow down: you can react again in %(seconds)s s.") % {"seconds": limited.wait}, status=429)
        response["Retry-After"] = str(limited.wait)
        return response
    if not request.htmx:
        return redirect("chat:message", message_id=message.pk)
    return HttpResponse(status=204)


@require_GET
@login_required
def search(request, room_id: int):
    room = access_room(request.user, room_id)
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    context = {"room": room, "query": query, "results": search_messages(room, query) if query else None,
               "search_form": form, "title": room.title_for(request.user)}
    template = "chat/search.html#results" if request.htmx else "chat/search.html"
    return render(request, template, context)


@require_POST
@login_required
def room_create(request, course_id: int):
    course = access_course_to_moderate(request.user, course_id)
    form = RoomForm(request.POST)
    if form.is_valid():
        if course.rooms.filter(name__iexact=form.cleaned_data["name"]).exists():
            form.add_error("name", _("This course already has a room with that name."))
        else:
            room = do_create_room(course, creator=request.user, name=form.cleaned_data["name"])
            url = reverse("chat:room", args=[room.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    response = render(request, "chat/home.html#room-form", {"course": course, "room_form": form})
    return reswap(retarget(response, f"#room-form-{course.pk}"), "outerHTML")


@require_POST
@login_required
def direct_start(request, user_id: int):
    other = get_object_or_404(get_user_model(), pk=user_id, is_active=True)
    if not can_message_directly(request.user, other):
        raise Http404
    if not Room.objects.direct_between(request.user, other).exists():  # opening one is not limited
        if wait := ratelimit.check("direct", request.user):
            return ratelimit.refused(request, wait)
    room = do_get_or_create_direct_room(request.user, other=other)
    url = reverse("chat:room", args=[room.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@login_required
def member_mute(request, course_id: int):
    course = access_course_to_moderate(request.user, course_id)
    form = MuteForm(request.POST)
    if not form.is_valid():
        return HttpResponse(_("Choose whom to mute and for how long."), status=400)
    # Before the students lookup: an instructor who isn't also enrolled would get a 404.
    if course.instructors.filter(pk=form.cleaned_data["user"]).exists():
        return HttpResponse(_("Instructors of the course cannot be muted."), status=400)
    user = get_object_or_404(course.students, pk=form.cleaned_data["user"])
    do_mute_member(course, actor=request.user, user=user, until=form.until())
    if request.htmx and request.POST.get("from") == "message":  # muted from a message's toolbar: stay
        return trigger_client_event(HttpResponse(status=204), "member-muted", {"name": user.name})
    return _moderation_response(request, course)


@require_POST
@login_required
def member_unmute(request, course_id: int, user_id: int):
    course = access_course_to_moderate(request.user, course_id)
    user = get_object_or_404(get_user_model(), pk=user_id)
    do_unmute_member(course, actor=request.user, user=user)
    return _moderation_response(request, course)


def _moderation_response(request, course):
    url = reverse("chat:moderation", args=[course.pk])
    if request.POST.get("q"):  # back to the search the moderator was in
        url += "?" + urlencode({"q": request.POST["q"][:100]})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


MODERATION_PAGE = 25


@require_GET
@login_required
def moderation(request, course_id: int):
    course = access_course_to_moderate(request.user, course_id)
    from django.db.models import Q

    from lms.chat.models import Mute

    # Found by name or username, a page at a time: a course may have hundreds of students.
    query = request.GET.get("q", "").strip()[:100]
    students = course.students.order_by("display_name", "username")
    if query:
        students = students.filter(
            Q(display_name__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
            | Q(username__icontains=query.lstrip("@"))
        )
    found = students.count()
    members = {"course": course, "query": query, "students": students[:MODERATION_PAGE], "found": found,
               "mute_form": MuteForm(), "muted_ids": set(Mute.objects.active().filter(course=course).values_list("user_id", flat=True))}
    if request.htmx:
        return render(request, "chat/moderation.html#members", members)
    context = {
        **members,
        "entries": ModerationEntry.objects.filter(course=course).select_related("actor", "target", "room")[:200],
        "mutes": Mute.objects.active().filter(course=course).select_related("user", "muted_by"),
    }
    return render(request, "chat/moderation.html", context)


@require_POST
@login_required
def typing(request, room_id: int):
    """The page's "I am typing" signal (at most every 3 s). Nothing is stored."""
    room = access_room(request.user, room_id)
    if wait := ratelimit.check("typing", request.user):
        return ratelimit.refused(request, wait)
    if not active_mute(request.user, room):
        do_signal_typing(room, user=request.user)
    return HttpResponse(status=204)


@require_POST
@login_required
def mark_read(request, room_id: int):
    """The page has shown messages up to `last_id` (sent in batches, not per message)."""
    room = access_room(request.user, room_id)
    last_id = request.POST.get("last_id", "")
    if not last_id.isdecimal():
        return HttpResponse(_("Say up to which message you have read."), status=400)
    do_mark_read(room, user=request.user, last_id=int(last_id))
    return HttpResponse(status=204)


@require_POST
@login_required
def read_all(request):
    """Mark every room read; the new counts are pushed to the user's pages."""
    do_mark_all_read(request.user)
    if not request.htmx:
        return redirect("chat:home")
    return HttpResponse(status=204)


@require_GET
@login_required
def mention_suggestions(request, room_id: int):
    """Members of the room whose username or name starts with `q`, for @-mentions."""
    from lms.chat.actions import room_members

    room = access_room(request.user, room_id)
    query = request.GET.get("q", "").lstrip("@").casefold()[:50]
    people = [
        m for m in room_members(room)
        if m.pk != request.user.pk and (m.username.casefold().startswith(query) or m.name.casefold().startswith(query))
    ]
    people.sort(key=lambda m: m.username)
    everyone = can_moderate_room(request.user, room) and "all".startswith(query)
    return render(request, "chat/room.html#mention-suggestions", {"people": people[:8], "everyone": everyone})


@require_GET
@login_required
def unread_state(request):
    """This user's unread counts, swapped in by id: after a gap too old to replay."""
    from lms.chat.receipts import unread_state as state

    return render(request, "base.html#unread-state", {"unread": state(request.user), "oob": True})


@require_http_methods(["GET", "POST"])
@login_required
def notifications(request):
    from lms.chat.models import Notification

    items = list(
        Notification.objects.filter(user=request.user)
        .select_related("message", "message__author", "message__room", "message__room__course")[:100]
    )
    if request.method == "POST" or any(n.read_at is None for n in items):
        do_mark_notifications_read(request.user)  # the page shows them: they are read
    if request.method == "POST":
        return redirect("chat:notifications")
    stream_url = event_stream_url([channel("user", request.user.pk)])
    return render(request, "chat/notifications.html", {"items": items, "stream_url": stream_url})
