"""A simulated LTI 1.3 platform (a small Moodle or Canvas) for offline tests.

It has its own RSA key and serves, on 127.0.0.1 and a free port:
  GET  /jwks            its public key set, which the tool fetches to check id_tokens
  GET  /auth            OIDC authorization: signs an id_token for the prepared launch and
                        form-posts it (with the state) to the tool's launch URL
  POST /token           OAuth 2 client-credentials with a JWT assertion signed by the tool
  GET  /nrps/<context>  Names and Roles memberships, paged with a Link: rel="next" header
  GET  /course          a course page that launches the tool into an iframe by a form post
  POST /deep-link-return  receives the tool's signed deep-linking response
"""

import html
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR = [ROLE + "Instructor"]
LEARNER = [ROLE + "Learner"]


class Platform:
    def __init__(self, *, client_id: str = "tool-client-1", deployment_id: str = "deployment-1"):
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.kid = "platform-key-1"
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.pending: dict[str, dict] = {}  # login_hint -> claims for the next id_token
        self.rosters: dict[str, list[dict]] = {}  # context id -> members
        self.page_size = 2
        self.tool_public_keys: list[str] = []  # PEMs the token endpoint accepts assertions from
        self.tool_init_url = ""
        self.deep_link_responses: list[dict] = []
        self.token_requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Platform":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # The tool's registration, as an admin copies it from the platform.
    @property
    def auth_url(self) -> str:
        return self.url + "/auth"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def keyset_url(self) -> str:
        return self.url + "/jwks"

    def jwks(self) -> dict:
        key = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {"keys": [{**key, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def claims(
        self,
        *,
        sub: str = "student-1",
        roles: list[str] = LEARNER,
        context_id: str = "course-42",
        message_type: str = "LtiResourceLinkRequest",
        name: str = "Ana Lima",
        custom: dict | None = None,
        deployment_id: str | None = None,
        **extra,
    ) -> dict:
        """The claims of a launch from this platform, before nonce, times and signature."""
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "name": name,
            "given_name": name.split()[0],
            "family_name": name.split()[-1],
            "email": f"{sub}@example.edu",
            LTI + "message_type": message_type,
            LTI + "version": "1.3.0",
            LTI + "deployment_id": deployment_id or self.deployment_id,
            LTI + "target_link_uri": "",
            LTI + "roles": roles,
            LTI + "context": {"id": context_id, "label": "BIO 101", "title": "Biology 101", "type": []},
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.url}/nrps/{context_id}",
                "service_versions": ["2.0"],
            },
        }
        if message_type == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = {"id": "link-1", "title": "Course live"}
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": self.url + "/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": False,
                "data": "opaque-platform-data",
            }
        if custom:
            claims[LTI + "custom"] = custom
        claims.update(extra)
        return claims

    def id_token(self, claims: dict, *, nonce: str, lifetime: int = 300, issued_at: int | None = None) -> str:
        now = int(time.time()) if issued_at is None else issued_at
        body = {"nonce": nonce, "iat": now, "exp": now + lifetime, **claims}
        return jwt.encode(body, self.private_pem, algorithm="RS256", headers={"kid": self.kid})

    def prepare(self, login_hint: str, claims: dict) -> None:
        """The next /auth request with this login hint answers with these claims."""
        self.pending[login_hint] = claims

    def login_params(self, login_hint: str, target_link_uri: str) -> dict:
        return {
            "iss": self.issuer,
            "login_hint": login_hint,
            "target_link_uri": target_link_uri,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
            "lti_message_hint": "hint-" + login_hint,
        }

    def _handler(platform):  # noqa: N805 - the handler closes over the platform
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: str, content_type: str = "text/html", headers: dict | None = None):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _form(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}

            def do_GET(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/jwks":
                    return self._send(200, json.dumps(platform.jwks()), "application/json")
                if parts.path == "/auth":
                    return self._auth(query)
                if parts.path.startswith("/nrps/"):
                    return self._nrps(parts.path.removeprefix("/nrps/"), int(query.get("page", "0")))
                if parts.path == "/favicon.ico":
                    return self._send(204, "", "image/x-icon")
                if parts.path == "/course":
                    return self._course_page(query["login_hint"])
                return self._send(404, "not found", "text/plain")

            def do_POST(self):
                form = self._form()
                if self.path == "/auth":
                    return self._auth(form)
                if self.path == "/token":
                    return self._token(form)
                if self.path == "/deep-link-return":
                    platform.deep_link_responses.append(form)
                    return self._send(200, "<p id='platform-got-link'>Link added.</p>")
                return self._send(404, "not found", "text/plain")

            def _auth(self, params: dict):
                claims = platform.pending.get(params.get("login_hint", ""))
                if claims is None or params.get("client_id") != platform.client_id:
                    return self._send(400, "unknown login", "text/plain")
                token = platform.id_token(claims, nonce=params["nonce"])
                page = (
                    f'<form id="launch" method="post" action="{html.escape(params["redirect_uri"])}">'
                    f'<input type="hidden" name="id_token" value="{token}">'
                    f'<input type="hidden" name="state" value="{html.escape(params["state"])}"></form>'
                    "<script>document.getElementById('launch').submit()</script>"
                )
                return self._send(200, page)

            def _token(self, form: dict):
                platform.token_requests += 1
                assertion = form.get("client_assertion", "")
                for pem in platform.tool_public_keys:
                    try:
                        jwt.decode(assertion, pem, algorithms=["RS256"], audience=platform.token_url,
                                   options={"verify_aud": False})
                        break
                    except jwt.InvalidTokenError:
                        continue
                else:
                    return self._send(401, json.dumps({"error": "invalid_client"}), "application/json")
                body = {"access_token": "nrps-token", "token_type": "Bearer", "expires_in": 3600,
                        "scope": form.get("scope", "")}
                return self._send(200, json.dumps(body), "application/json")

            def _nrps(self, context_id: str, page: int):
                if self.headers.get("Authorization") != "Bearer nrps-token":
                    return self._send(401, "{}", "application/json")
                members = platform.rosters.get(context_id, [])
                size = platform.page_size
                chunk = members[page * size:(page + 1) * size]
                headers = {}
                if (page + 1) * size < len(members):
                    headers["Link"] = f'<{platform.url}/nrps/{context_id}?page={page + 1}>; rel="next"'
                body = {"id": f"{platform.url}/nrps/{context_id}", "context": {"id": context_id}, "members": chunk}
                return self._send(200, json.dumps(body), "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
                                  headers)

            def _course_page(self, login_hint: str):
                params = platform.login_params(login_hint, platform.tool_init_url)
                inputs = "".join(
                    f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items()
                )
                page = (
                    "<!DOCTYPE html><title>Biology 101</title><h1>Biology 101</h1>"
                    f'<form id="tool-launch" method="post" target="tool-frame" action="{html.escape(platform.tool_init_url)}">'
                    f"{inputs}</form>"
                    '<iframe name="tool-frame" id="tool-frame" title="Course live" style="width:100%;height:600px"></iframe>'
                    "<script>document.getElementById('tool-launch').submit()</script>"
                )
                return self._send(200, page)

        return Handler


def member(sub: str, roles: list[str], *, name: str = "", status: str = "Active") -> dict:
    """One entry of a Names and Roles membership list."""
    name = name or sub.title()
    return {"user_id": sub, "roles": roles, "status": status, "name": name,
            "given_name": name.split()[0], "family_name": name.split()[-1], "email": f"{sub}@example.edu"}


def new_login_hint() -> str:
    return uuid.uuid4().hex


__all__ = ["Platform", "INSTRUCTOR", "LEARNER", "LTI", "member", "new_login_hint", "urlencode"]
