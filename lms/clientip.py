"""The client's address, taken the way the platform in front of the app says it.

Every platform documents one trustworthy place, and every other place can be written by the
client: the first `X-Forwarded-For` entry is whatever the client sent. CLIENT_IP_SOURCE
names the place (docs/deployment.md, "Client addresses", says which for each platform):

- `remote_addr`: the peer address. Directly on the internet, or behind nginx on the same
  host (uvicorn takes the address nginx appended, since it trusts 127.0.0.1), or behind a
  proxy whose range is in uvicorn's FORWARDED_ALLOW_IPS.
- `x-forwarded-for`: the PROXY_COUNT-th entry from the right of `X-Forwarded-For`, the one
  the outermost of PROXY_COUNT proxies appended (Heroku's router: PROXY_COUNT=1, the last).
- `fly-client-ip`, `x-real-ip`: that header, which the platform's proxy sets, overwriting
  any the client sent (Fly.io; Railway).

An address that is missing or is not an IP address falls back to the peer address.
"""

import ipaddress

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SOURCES = {"remote_addr", "x-forwarded-for", "fly-client-ip", "x-real-ip"}


def client_ip(request) -> str:
    source = settings.CLIENT_IP_SOURCE
    peer = request.META.get("REMOTE_ADDR", "")
    if source == "remote_addr":
        return peer
    if source == "x-forwarded-for":
        entries = [entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        entries = [entry for entry in entries if entry]
        count = settings.PROXY_COUNT
        # Fewer entries than proxies: the request did not come through them all.
        candidate = entries[-count] if len(entries) >= count else ""
    elif source in SOURCES:
        candidate = request.META.get("HTTP_" + source.upper().replace("-", "_"), "").strip()
    else:
        raise ImproperlyConfigured(f"CLIENT_IP_SOURCE must be one of {', '.join(sorted(SOURCES))}, not {source!r}.")
    return _address(candidate) or peer


def _address(value: str) -> str:
    if value.startswith("[") and "]" in value:  # [2001:db8::1]:443
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # 203.0.113.9:443
        value = value.split(":")[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""
