"""Jitsi Meet on the stream page: which server, which room, and (for JaaS or a self-hosted
Jitsi with JWT) a short-lived token that names the room and says who moderates.

meet.jit.si, the default, needs no token but ends embedded calls after 5 minutes (its policy
since 2023); JaaS (8x8.vc) or your own Jitsi removes that limit: see the README.
"""

import time
from dataclasses import dataclass

import jwt
from django.conf import settings

TOKEN_LIFETIME = 60 * 60  # long enough to join (Jitsi checks at join), short enough to be useless later
PUBLIC_DOMAIN = "meet.jit.si"


@dataclass(frozen=True)
class Meeting:
    domain: str
    room: str
    token: str | None
    is_host: bool
    display_name: str

    @property
    def script_url(self) -> str:
        return f"https://{self.domain}/external_api.js"

    @property
    def time_limited(self) -> bool:
        """meet.jit.si ends embedded meetings after 5 minutes."""
        return self.domain == PUBLIC_DOMAIN and self.token is None


def uses_jwt() -> bool:
    return bool(settings.JAAS_APP_ID and settings.JAAS_KID and settings.JAAS_PRIVATE_KEY)


def meeting_for(stream, user, *, is_host: bool) -> Meeting:
    room = stream.jitsi_room
    token = None
    if uses_jwt():
        # JaaS rooms are named "<app id>/<room>"; the token names the bare room.
        token = sign_token(room, user, is_host=is_host)
        room = f"{settings.JAAS_APP_ID}/{room}"
    return Meeting(settings.JITSI_DOMAIN, room, token, is_host, user.name)


def sign_token(room: str, user, *, is_host: bool, now: float | None = None) -> str:
    """RS256, with the key id in the header, as JaaS and Jitsi's token auth expect."""
    now = int(now if now is not None else time.time())
    claims = {
        "aud": "jitsi",
        "iss": "chat",
        "sub": settings.JAAS_APP_ID,
        "room": room,
        "iat": now,
        "nbf": now - 10,
        "exp": now + TOKEN_LIFETIME,
        "context": {
            "user": {
                "id": str(user.pk),
                "name": user.name,
                "moderator": "true" if is_host else "false",
            },
            "features": {
                "livestreaming": "false",
                "recording": "true" if is_host else "false",
                "transcription": "false",
                "outbound-call": "false",
            },
        },
    }
    return jwt.encode(claims, settings.JAAS_PRIVATE_KEY, algorithm="RS256", headers={"kid": settings.JAAS_KID})
