"""lms.settings: what start-up refuses, the deployment checks, the CSP header, logging."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JITSI = "https://meet.jit.si"


def run_django(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Start the project in a fresh process with only `env` (and PATH) set."""
    full_env = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "lms.settings", **env}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60
    )


SETUP = ["-c", "import django; django.setup()"]


def test_startup_refuses_to_run_without_secret_key_when_debug_is_off():
    result = run_django(SETUP)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_startup_runs_without_secret_key_in_debug():
    result = run_django(SETUP, DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_startup_keeps_loggers_created_before_it():
    code = "import logging; log = logging.getLogger('uvicorn.error'); import django; django.setup(); print(log.disabled)"
    result = run_django(["-c", code], DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_logging_keeps_existing_loggers(settings):
    assert settings.LOGGING["disable_existing_loggers"] is False


def test_check_deploy_finds_no_issues_in_production_settings():
    result = run_django(
        ["manage.py", "check", "--deploy"],
        DEBUG="",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


@pytest.fixture
def csp(client) -> dict[str, list[str]]:
    header = client.get("/accounts/login/").headers["Content-Security-Policy"]
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


def test_csp_allows_scripts_from_self_and_jitsi_only(csp):
    assert sorted(csp["script-src"]) == sorted(["'self'", JITSI])
    assert "'unsafe-inline'" not in csp["script-src"]


def test_csp_allows_jitsi_frames_and_no_inline_styles(csp):
    assert csp["frame-src"] == [JITSI]
    assert csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]


def test_no_page_may_be_framed_and_both_headers_say_so(client, csp):
    """X-Frame-Options for old browsers, frame-ancestors for the rest: the same answer, none."""
    assert client.get("/accounts/login/").headers["X-Frame-Options"] == "DENY"
    assert csp["frame-ancestors"] == ["'none'"]
