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
