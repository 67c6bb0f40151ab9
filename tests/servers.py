"""Real servers for tests, each on 127.0.0.1 and a free port, stopped when done."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the test database another process should open."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


# What an app server writes when something went wrong: a traceback, or a record at ERROR
# (ours: "<time> ERROR <logger>: ..."; uvicorn's: "ERROR:    Exception in ASGI application").
SERVER_ERROR = re.compile(r"Traceback \(most recent call last\)|(^|\s)(ERROR|CRITICAL)(:|\s)")


class AppServer:
    """The ASGI app under uvicorn, in a process of its own, against the test database.

    Every server running is in `AppServer.running`: after each test, `tests/conftest.py` reads
    what they wrote meanwhile and fails the test on any error (`server_errors`)."""

    running: set["AppServer"] = set()

    def __init__(self, env: dict[str, str], port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.process = None
        self.log = ROOT / f".uvicorn-{self.port}.log"
        self.read_to = 0

    def start(self, timeout: float = 30) -> "AppServer":
        env = {**os.environ, **self.env, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "lms.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--timeout-graceful-shutdown", "2", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
        )
        AppServer.running.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def read_errors(self) -> None:
        """Put what the server wrote since the last read that reports an error in `ERRORS`."""
        try:
            with self.log.open(errors="replace") as log:
                log.seek(self.read_to)
                text = log.read()
                self.read_to = log.tell()
        except FileNotFoundError:
            return
        lines = text.splitlines()
        ERRORS.extend(
            f"app server on port {self.port}:\n" + "\n".join(lines[i:i + 15])
            for i, line in enumerate(lines) if SERVER_ERROR.search(line)
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        AppServer.running.discard(self)
        self.read_errors()  # what it wrote on its way out counts too
        self.log.unlink(missing_ok=True)


# Errors the app servers wrote and no test has reported yet (see `server_errors`).
ERRORS: list[str] = []


def server_errors() -> list[str]:
    """Every error the app servers wrote since the last call (running or stopped since)."""
    for server in list(AppServer.running):
        server.read_errors()
    found = ERRORS[:]
    ERRORS.clear()
    return found


class RedisServer:
    """A throwaway redis-server, so that a test may stop and restart it."""

    def __init__(self):
        self.port = free_port()  # kept across restarts
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
