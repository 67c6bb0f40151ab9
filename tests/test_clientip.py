"""lms.clientip: the client's address as each platform requires, whatever headers the client forges."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from lms.accounts.actions import do_regenerate_calendar_token
from lms.clientip import client_ip

ROUTER = "10.1.2.3"  # the platform's router: the peer address the app sees
CLIENT = "203.0.113.9"  # the real client
FORGED = "198.51.100.7"  # what the client writes into headers itself
LOGIN_URL = "/accounts/login/"


def request(**meta):
    return RequestFactory().get("/", REMOTE_ADDR=meta.pop("REMOTE_ADDR", ROUTER), **meta)


def test_default_is_the_peer_address_and_ignores_forwarded_headers(settings):
    assert settings.CLIENT_IP_SOURCE == "remote_addr"
    forged = request(HTTP_X_FORWARDED_FOR=FORGED, HTTP_FLY_CLIENT_IP=FORGED, HTTP_X_REAL_IP=FORGED)
    assert client_ip(forged) == ROUTER


@pytest.mark.parametrize(
    "forwarded, count, expected",
    [
        (f"{CLIENT}", 1, CLIENT),  # Heroku: the router appends the address it saw
        (f"{FORGED}, {CLIENT}", 1, CLIENT),  # the client's own entry comes first: never taken
        (f"{FORGED}, {FORGED}, {CLIENT}", 1, CLIENT),
        (f"{FORGED}, {CLIENT}, 10.0.0.5", 2, CLIENT),  # two proxies: the second from the right
        (f"{FORGED},{CLIENT}", 1, CLIENT),
        (f"{FORGED}, [2001:db8::1]:443", 1, "2001:db8::1"),
        (f"{FORGED}, {CLIENT}:51000", 1, CLIENT),
        ("", 1, ROUTER),  # no header: the request did not come through the router
        (f"{CLIENT}", 2, ROUTER),  # fewer entries than proxies
        (f"{FORGED}, not-an-address", 1, ROUTER),
    ],
)
def test_x_forwarded_for_takes_the_entry_the_outermost_proxy_appended(settings, forwarded, count, expected):
    settings.CLIENT_IP_SOURCE = "x-forwarded-for"
    settings.PROXY_COUNT = count
    assert client_ip(request(HTTP_X_FORWARDED_FOR=forwarded)) == expected


@pytest.mark.parametrize("source, header", [("fly-client-ip", "HTTP_FLY_CLIENT_IP"), ("x-real-ip", "HTTP_X_REAL_IP")])
def test_platform_header_is_the_only_one_read(settings, source, header):
    settings.CLIENT_IP_SOURCE = source
    assert client_ip(request(**{header: CLIENT, "HTTP_X_FORWARDED_FOR": FORGED})) == CLIENT
    assert client_ip(request(HTTP_X_FORWARDED_FOR=FORGED)) == ROUTER  # header missing: the peer
    assert client_ip(request(**{header: "<script>"})) == ROUTER


def test_unknown_source_is_a_configuration_error(settings):
    settings.CLIENT_IP_SOURCE = "x-client-ip"
    with pytest.raises(ImproperlyConfigured):
        client_ip(request())


# The login throttle (django-axes) counts per username and this address.


def fail_login(client, times, address, forged):
    for n in range(times):
        client.post(LOGIN_URL, {"username": "ana", "password": "wrong"},
                    REMOTE_ADDR=ROUTER, HTTP_X_FORWARDED_FOR=f"{forged}{n}, {address}")


def log_in(client, address, forged="198.51.100.99"):
    return client.post(LOGIN_URL, {"username": "ana", "password": "pw-for-tests"},
                       REMOTE_ADDR=ROUTER, HTTP_X_FORWARDED_FOR=f"{forged}, {address}")


@pytest.mark.django_db
def test_login_throttle_behind_a_router_cannot_be_dodged_by_forging_headers(client, member, settings):
    settings.CLIENT_IP_SOURCE = "x-forwarded-for"
    fail_login(client, 5, CLIENT, forged="198.51.100.")  # a new forged entry every time
    assert log_in(client, CLIENT, forged="192.0.2.200").status_code == 429


@pytest.mark.django_db
def test_login_throttle_behind_a_router_does_not_lock_out_everyone(client, member, settings):
    """All requests come from the router's address: one student's failures must not lock the class."""
    settings.CLIENT_IP_SOURCE = "x-forwarded-for"
    fail_login(client, 5, CLIENT, forged="198.51.100.")
    assert log_in(client, "192.0.2.44").status_code == 302


# The rate limits for what is done without logging in count per this address too.


@pytest.mark.django_db
def test_calendar_feed_limit_counts_the_real_address_not_the_forged_one(client, member, settings):
    settings.CLIENT_IP_SOURCE = "fly-client-ip"
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "calendar": (3, 600)}
    url = f"/livestream/calendar/{do_regenerate_calendar_token(member)}.ics"
    codes = [
        client.get(url, REMOTE_ADDR=ROUTER, HTTP_FLY_CLIENT_IP=CLIENT, HTTP_X_FORWARDED_FOR=f"{FORGED}{n}").status_code
        for n in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    refused = client.get(url, REMOTE_ADDR=ROUTER, HTTP_FLY_CLIENT_IP=CLIENT)
    assert 1 <= int(refused["Retry-After"]) <= 600
    assert client.get(url, REMOTE_ADDR=ROUTER, HTTP_FLY_CLIENT_IP="192.0.2.44").status_code == 200
