"""A small, real OpenID Connect provider for the tests: the authorization-code flow with PKCE.

Run as a process (``tests/oidc.py`` starts and stops it for the tests)::

    python -m tests.oidc_provider --port 27750 --users users.json --client-id corehour \\
        --client-secret-file secret --redirect-uri http://127.0.0.1:27700/hub/oauth_callback

It serves, on ``http://127.0.0.1:<port>`` (which is also its issuer):

- ``/.well-known/openid-configuration``: the discovery document;
- ``/jwks``: the public half of an RSA key generated at start (so every run has new keys);
- ``/authorize``: an HTML login form (a real ``<form>``, username and password) for a
  request with ``response_type=code``, the registered client and redirect URI, and a PKCE
  ``code_challenge`` with method S256; after a good password it redirects back with a code;
- ``/token``: swaps a code for an access token and an RS256 id_token (signed with joserfc,
  not PyJWT, so the portal's checks see tokens they did not make).  The client authenticates
  with ``client_secret_post`` or ``client_secret_basic``; a missing or wrong
  ``code_verifier`` is ``invalid_grant``, and a code works once, whatever the outcome;
- ``/userinfo``: the person's claims for a bearer access token.

Users come from a JSON file: ``[{"sub", "username", "password", "email", "name", "groups"}]``,
plus ``"email_verified": false`` for an address the provider has not checked (the default is
true).  The file is read at each sign-in, so a test can change someone's groups between two
sign-ins.  Claims follow the granted scopes: ``email`` gives email and email_verified,
``profile`` name and preferred_username, ``groups`` groups.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CODE_SECONDS = 60
TOKEN_SECONDS = 300
VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
SCOPE_CLAIMS = {
    "email": ("email", "email_verified"),
    "profile": ("name", "preferred_username"),
    "groups": ("groups",),
}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Client:
    client_id: str
    secret: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class Grant:
    """An issued code (or, before the password, a pending authorization request)."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    state: str | None
    challenge: str
    nonce: str | None
    expires: float
    user: dict | None = None


class AuthorizeError(Exception):
    """A refused authorization request; with a checked ``grant``, the client hears of it."""

    def __init__(self, error: str, description: str, grant: Grant | None = None):
        super().__init__(error, description)
        self.error, self.description, self.grant = error, description, grant


class Provider:
    def __init__(self, issuer: str, users_file: Path, client: Client):
        self.issuer = issuer
        self.users_file = users_file
        self.client = client
        self.key = RSAKey.generate_key(
            2048, parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"}
        )
        self.lock = threading.Lock()
        self.pending: dict[str, Grant] = {}
        self.codes: dict[str, Grant] = {}
        self.access_tokens: dict[str, Grant] = {}

    def discovery(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "scopes_supported": ["openid", *SCOPE_CLAIMS],
        }

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    def claims(self, user: dict, scope: tuple[str, ...]) -> dict:
        values = {"email_verified": True, **user, "preferred_username": user["username"]}
        claims = {"sub": user["sub"]}
        for name in scope:
            for claim in SCOPE_CLAIMS.get(name, ()):
                if claim in values:
                    claims[claim] = values[claim]
        return claims

    # -- /authorize -----------------------------------------------------------------

    def authorization_request(self, query: dict) -> Grant:
        """A checked authorization request, or :class:`AuthorizeError`."""
        if query.get("client_id") != self.client.client_id:
            raise AuthorizeError("invalid_client", "unknown client_id")
        if query.get("redirect_uri") not in self.client.redirect_uris:
            raise AuthorizeError(
                "invalid_request", "redirect_uri is not registered for this client"
            )
        grant = Grant(
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            scope=tuple(query.get("scope", "").split()),
            state=query.get("state"),
            challenge=query.get("code_challenge", ""),
            nonce=query.get("nonce"),
            expires=time.time() + 600,
        )
        if query.get("response_type") != "code":
            raise AuthorizeError("unsupported_response_type", "only response_type=code", grant)
        if query.get("code_challenge_method") != "S256" or not grant.challenge:
            raise AuthorizeError(
                "invalid_request", "PKCE with code_challenge_method=S256 is required", grant
            )
        if "openid" not in grant.scope:
            raise AuthorizeError("invalid_scope", "the openid scope is required", grant)
        return grant

    def sign_in(self, request_id: str, username: str, password: str) -> Grant | None:
        """The code's grant for a right password, None for a wrong one."""
        users = {user["username"]: user for user in json.loads(self.users_file.read_text())}
        user = users.get(username)
        if user is None or not _same(user["password"], password):
            return None
        with self.lock:
            pending = self.pending.pop(request_id, None)
        if pending is None or pending.expires < time.time():
            raise KeyError(request_id)
        return replace(pending, user=user, expires=time.time() + CODE_SECONDS)

    # -- /token ---------------------------------------------------------------------

    def token(self, form: dict, basic: tuple[str, str] | None) -> tuple[int, dict]:
        client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
        if client_id != self.client.client_id or not _same(secret or "", self.client.secret):
            return 401, {
                "error": "invalid_client",
                "error_description": "client authentication failed",
            }
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)  # one use, whatever happens next
        if grant is None or grant.expires < time.time() or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        verifier = form.get("code_verifier", "")
        if not VERIFIER.match(verifier) or not _same(s256(verifier), grant.challenge):
            return 400, {
                "error": "invalid_grant",
                "error_description": "code_verifier is missing or does not match the code_challenge",
            }
        access_token = secrets.token_urlsafe(32)
        with self.lock:
            self.access_tokens[access_token] = replace(grant, expires=time.time() + TOKEN_SECONDS)
        now = int(time.time())
        id_claims = {
            **self.claims(grant.user, grant.scope),
            "iss": self.issuer,
            "aud": client_id,
            "azp": client_id,
            "iat": now,
            "auth_time": now,
            "exp": now + TOKEN_SECONDS,
            **({"nonce": grant.nonce} if grant.nonce else {}),
        }
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, id_claims, self.key)
        return 200, {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "scope": " ".join(grant.scope),
            "id_token": id_token,
        }

    def userinfo(self, access_token: str) -> dict | None:
        with self.lock:
            grant = self.access_tokens.get(access_token)
        if grant is None or grant.expires < time.time():
            return None
        return self.claims(grant.user, grant.scope)


LOGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in: corehour test provider</title></head>
<body><h1>Sign in</h1>{message}
<form method="post" action="/authorize">
<input type="hidden" name="request" value="{request_id}">
<p><label for="username">Username</label> <input id="username" name="username" autocomplete="username" required></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" required></p>
<p><button id="sign-in" type="submit">Sign in</button></p>
</form></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    server: ProviderServer

    @property
    def provider(self) -> Provider:
        return self.server.provider

    def _send(self, status: int, body: str | dict, content_type: str = "application/json") -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, url: str, params: dict) -> None:
        self.send_response(302)
        self.send_header("Location", f"{url}?{urlencode({k: v for k, v in params.items() if v})}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _form(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def _login_page(self, request_id: str, message: str = "", status: int = 200) -> None:
        self._send(
            status,
            LOGIN_PAGE.format(request_id=html.escape(request_id), message=message),
            "text/html",
        )

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._send(200, self.provider.discovery())
        elif url.path == "/jwks":
            self._send(200, self.provider.jwks())
        elif url.path == "/authorize":
            self._authorize(query)
        elif url.path == "/userinfo":
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            claims = self.provider.userinfo(token) if scheme.lower() == "bearer" else None
            if claims is None:
                self._send(401, {"error": "invalid_token"})
            else:
                self._send(200, claims)
        else:
            self._send(404, {"error": "not_found"})

    def _authorize(self, query: dict) -> None:
        try:
            grant = self.provider.authorization_request(query)
        except AuthorizeError as e:
            if e.grant is None:  # never redirect to an unchecked redirect_uri
                page = f"<p>{html.escape(e.error)}: {html.escape(e.description)}</p>"
                self._send(400, page, "text/html")
                return
            self._redirect(
                e.grant.redirect_uri,
                {"error": e.error, "error_description": e.description, "state": e.grant.state},
            )
            return
        request_id = secrets.token_urlsafe(16)
        with self.provider.lock:
            self.provider.pending[request_id] = grant
        self._login_page(request_id)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        if path == "/authorize":
            request_id = form.get("request", "")
            try:
                grant = self.provider.sign_in(
                    request_id, form.get("username", ""), form.get("password", "")
                )
            except KeyError:
                self._send(
                    400, "<p>This sign-in request has expired; start again.</p>", "text/html"
                )
                return
            if grant is None:
                self._login_page(request_id, "<p id='error'>Wrong username or password.</p>", 401)
                return
            code = secrets.token_urlsafe(24)
            with self.provider.lock:
                self.provider.codes[code] = grant
            self._redirect(grant.redirect_uri, {"code": code, "state": grant.state})
        elif path == "/token":
            self._send(*self.provider.token(form, self._basic_auth()))
        else:
            self._send(404, {"error": "not_found"})

    def _basic_auth(self) -> tuple[str, str] | None:
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
        return client_id, secret


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, provider: Provider):
        super().__init__(("127.0.0.1", port), Handler)
        self.provider = provider


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=Path, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret-file", type=Path, required=True)
    parser.add_argument("--redirect-uri", action="append", required=True)
    args = parser.parse_args(argv)
    client = Client(
        args.client_id, args.client_secret_file.read_text().strip(), tuple(args.redirect_uri)
    )
    issuer = f"http://127.0.0.1:{args.port}"
    json.loads(args.users.read_text())  # a broken file stops the provider at start
    provider = Provider(issuer, args.users, client)
    ProviderServer(args.port, provider).serve_forever()


if __name__ == "__main__":
    main()
