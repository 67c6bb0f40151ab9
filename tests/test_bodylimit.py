"""lms.bodylimit: a real server refuses bodies over the limit before reading them."""

import secrets
import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from lms.livestream.actions import do_create_stream, do_end_stream, do_start_stream
from lms.livestream.models import Recording
from tests.servers import AppServer

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024**2


@pytest.fixture(scope="module")
def server(test_database_url, tmp_path_factory):
    media = tmp_path_factory.mktemp("media")
    server = AppServer({"DATABASE_URL": test_database_url, "MEDIA_ROOT": str(media)}).start()
    server.media = media
    yield server
    server.stop()


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_status(sock) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def head(path: str, *lines: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *lines]) + "\r\n\r\n").encode()


def test_declared_200_mb_anonymous_post_is_refused_before_a_byte_is_read(server):
    sock = connect(server)
    start = time.monotonic()
    sock.sendall(head("/accounts/login/", f"Content-Length: {200 * MB}",
                      "Content-Type: application/x-www-form-urlencoded"))
    # Not one byte of the body is sent: the answer can only come from the header.
    assert read_status(sock) == 413
    assert time.monotonic() - start < 5
    sock.close()


def test_chunked_200_mb_post_is_refused_once_past_the_limit(server):
    """Without Content-Length the body is counted as it arrives, not spooled to the end."""
    sock = connect(server)
    sock.sendall(head("/accounts/login/", "Transfer-Encoding: chunked",
                      "Content-Type: application/x-www-form-urlencoded"))
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * 64 * 1024)
    sent = 0
    sock.settimeout(0.05)
    status = None
    try:
        while sent < 200 * MB:
            sock.sendall(chunk)
            sent += 64 * 1024
            try:
                sock.settimeout(0.001)
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except (TimeoutError, BlockingIOError):
                pass
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while we were still sending
    sock.settimeout(10)
    try:
        status = read_status(sock)
    except (ConnectionResetError, IndexError):
        status = None
    sock.close()
    assert status == 413
    assert sent < 20 * MB  # the limit (1 MB) plus what the sockets' buffers held


def test_small_posts_are_not_affected(server):
    sock = connect(server)
    body = b"username=a&password=b"
    sock.sendall(head("/accounts/login/", f"Content-Length: {len(body)}",
                      "Content-Type: application/x-www-form-urlencoded") + body)
    assert read_status(sock) == 403  # no CSRF token: Django answered, so it read the body
    sock.close()


@pytest.fixture
def ended(course, instructor):
    starts = timezone.now() - timedelta(hours=2)
    stream = do_create_stream(course, creator=instructor, title="Cells", starts_at=starts, ends_at=starts + timedelta(hours=1))
    return do_end_stream(do_start_stream(stream, actor=instructor), actor=instructor)


def upload(server, stream, size: int, session: str | None = None) -> int:
    boundary = "lms-test-boundary"
    token = secrets.token_hex(16)
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"talk.mp4\"\r\n"
        f"Content-Type: video/mp4\r\n\r\n".encode()
        + b"\0" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    cookies = f"csrftoken={token}" + (f"; sessionid={session}" if session else "")
    sock = connect(server)
    sock.sendall(head(
        f"/livestream/{stream.pk}/recording/attach/", f"Content-Length: {len(body)}",
        f"Content-Type: multipart/form-data; boundary={boundary}", f"Cookie: {cookies}", f"X-CSRFToken: {token}",
    ))
    try:
        sock.sendall(body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status = read_status(sock)
    sock.close()
    return status


def test_recording_upload_may_be_larger_for_who_manages_the_stream(server, ended, instructor, member, session_for):
    instructor_key, member_key = session_for(instructor), session_for(member)
    assert upload(server, ended, 3 * MB) == 413  # anonymous
    assert upload(server, ended, 3 * MB, session=member_key) == 413  # a student may not attach
    assert upload(server, ended, 3 * MB, session=instructor_key) == 302
    stored = server.media / Recording.objects.get(stream=ended).file.name
    assert stored.stat().st_size == 3 * MB
