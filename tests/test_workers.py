"""lms.workers: gunicorn refuses to start several workers without Redis."""

import os
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest

from lms.workers import UvicornWorker
from tests.servers import ROOT, free_port


def gunicorn(workers: int, redis_url: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """gunicorn as the Procfile starts it; it must stop by itself (the refusal) within `timeout`."""
    env = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "lms.asgi:application", "-k", "lms.workers.UvicornWorker",
         "--bind", f"127.0.0.1:{free_port()}", "--workers", str(workers), "--graceful-timeout", "10"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the master and any worker it started
        stdout, stderr = process.communicate()
        pytest.fail(f"gunicorn kept running with {workers} workers and no Redis:\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_two_workers_without_redis_refuse_to_start_and_say_why():
    result = gunicorn(workers=2, redis_url="")
    assert result.returncode != 0
    assert "2 worker processes need REDIS_URL" in result.stderr
    assert "WEB_CONCURRENCY=1" in result.stderr
    assert "Booting worker" not in result.stderr  # refused before any worker started


@pytest.mark.parametrize("workers, redis_url", [(1, ""), (1, "redis://127.0.0.1:6379/0"), (4, "redis://127.0.0.1:6379/0")])
def test_one_worker_or_redis_passes_the_check(monkeypatch, workers, redis_url):
    monkeypatch.setenv("REDIS_URL", redis_url)
    UvicornWorker.check_config(SimpleNamespace(workers=workers), log=None)


def test_two_workers_without_redis_fail_the_check(monkeypatch):
    monkeypatch.setenv("REDIS_URL", " ")
    with pytest.raises(RuntimeError, match="need REDIS_URL"):
        UvicornWorker.check_config(SimpleNamespace(workers=2), log=None)


def raw_status(port: int, header_bytes: int, finished: bool = True) -> int | None:
    """The status of a request with a header of `header_bytes`, sent whole or left unfinished
    (as a slow or endless header arrives: h11 caps what it holds of an unfinished request)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        end = b"\r\n\r\n" if finished else b""
        sock.sendall(b"GET /static/lms/app.css HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * header_bytes + end)
        data = sock.recv(200)
    return int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1") else None


def test_worker_refuses_oversized_headers_but_takes_ordinary_ones(tmp_path):
    import socket
    import time

    port = free_port()
    # A static file needs no database; the one named here is never opened.
    env = {**os.environ, "REDIS_URL": "", "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "lms.asgi:application", "-k", "lms.workers.UvicornWorker",
         "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        assert raw_status(port, 4 * 1024) == 200  # reaches the app
        assert raw_status(port, 40 * 1024, finished=False) == 400  # refused before the app
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
