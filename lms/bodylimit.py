"""Request bodies over a limit are refused with 413 before the app reads them.

Django's ASGI handler reads a whole body, to memory and then to a temporary file, before any
middleware or view runs: without this, an anonymous client could make a worker write
gigabytes to disk before the 403 of a login form. The limit is REQUEST_MAX_BYTES; only a
recording upload, by someone who may manage its stream, may send up to UPLOAD_MAX_BYTES.
A declared `Content-Length` over the limit is refused before a byte of the body is read; a
body without one (chunked) is counted as it arrives and refused once it passes the limit.
"""

import logging
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.urls import Resolver404, resolve

logger = logging.getLogger(__name__)

TOO_LARGE = b"Request body too large.\n"


class BodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _content_length(scope)
        if length is None and not _may_have_body(scope):
            return await self.app(scope, receive, send)
        limit = settings.REQUEST_MAX_BYTES
        if length is not None and length <= limit:
            return await self.app(scope, receive, send)
        if await _may_send_large(scope):
            limit = settings.UPLOAD_MAX_BYTES
        if length is not None and length > limit:
            return await _refuse(send)

        # A chunked body (or one larger than the first limit): count it as it comes.
        received = 0
        refused = False

        async def counting_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await _refuse(send)
                    return {"type": "http.disconnect"}  # the app gives up, as if the client left
            return message

        async def guarded_send(message):
            if not refused:  # the 413 is the whole answer
                await send(message)

        await self.app(scope, counting_receive, guarded_send)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server itself refuses a malformed length
    return None


def _may_have_body(scope) -> bool:
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


async def _refuse(send) -> None:
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(TOO_LARGE)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": TOO_LARGE})


async def _may_send_large(scope) -> bool:
    """Whether this is a recording upload by someone who may manage the stream."""
    try:
        match = resolve(scope["path"])
    except (Resolver404, ValueError, UnicodeError):
        return False
    if match.view_name != "livestream:recording_attach":
        return False
    cookies = parse_cookie(
        b"; ".join(value for name, value in scope.get("headers", ()) if name == b"cookie").decode("latin-1")
    )
    session_key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    return await sync_to_async(_may_manage, thread_sensitive=True)(session_key, int(match.kwargs["stream_id"]))


def _may_manage(session_key: str, stream_id: int) -> bool:
    from django.contrib.auth import get_user
    from django.db import close_old_connections

    from lms.livestream.access import can_manage_stream

    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    try:
        user = get_user(request)
        return user.is_authenticated and can_manage_stream(user, stream_id)
    finally:
        close_old_connections()
