"""/healthz: what a load balancer or orchestrator polls."""

import re

import pytest
from django.db import OperationalError, connection

pytestmark = pytest.mark.django_db


def expected_ok(settings) -> dict[str, str]:
    return {"status": "ok", "database": "ok", **({"redis": "ok"} if settings.REDIS_URL else {})}


def test_healthz_is_ok_when_the_backends_answer(client, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == expected_ok(settings)
    assert "no-cache" in response.headers["Cache-Control"]


def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    def refuse():
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", refuse)
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unavailable", "down")


def test_healthz_is_503_when_redis_is_down(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "down"}


def test_healthz_answers_plain_http_while_other_pages_redirect_to_https(client, settings):
    assert any(re.search(pattern, "healthz") for pattern in settings.SECURE_REDIRECT_EXEMPT)
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code == 200
    login = client.get("/accounts/login/")
    assert login.status_code == 301
    assert login.url == "https://testserver/accounts/login/"
