"""Request handling shared by the billing API and pages: who is asking, and errors for people."""

from __future__ import annotations

import json

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado import web

from billing_hooks.ledger import LedgerError
from billing_hooks.service.access import Forbidden, NotFound, Viewer
from billing_hooks.service.bodies import (
    JSON_BYTES,
    BodyError,
    check_size,
    declared_length,
    json_object,
)
from billing_hooks.service.context import Context
from centre.api_scopes import BILLING, missing_scope, not_signed_in
from centre.errors import error_json


class Refused(web.HTTPError):
    """A 4xx with a message for people and, for bad input, the field it is about."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(status, message)
        self.message = message
        self.field = field


def refused_from(error: Exception) -> Refused:
    if isinstance(error, LedgerError):
        return Refused(400, error.message, error.field)
    if isinstance(error, Forbidden):
        return Refused(403, str(error))
    if isinstance(error, NotFound):
        return Refused(404, str(error))
    raise error


class FreshHubOAuth(HubOAuth):
    """HubOAuth that asks the hub about every token: a revoked token stops working at once,
    not after JupyterHub's five-minute cache (whose 0 means "forever").  The service makes
    it first (app.serve), so every handler's ``HubOAuth.instance()`` is this one."""

    def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):
        return super().user_for_token(token, use_cache=False, session_id=session_id, sync=sync)


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    hub_auth_class = FreshHubOAuth
    ctx: Context
    viewer: Viewer | None = None

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx

    async def prepare(self) -> None:
        user = self.current_user
        if user:
            name = user["name"]
            self.viewer = Viewer(name, await self.ctx.hub.is_admin(name))


@web.stream_request_body
class ApiHandler(BaseHandler):
    """An API route: it reads a body only once the body's declared size fits ``max_body``,
    and parses it only when the handler asks, after its permission check."""

    max_body: int = JSON_BYTES  # bytes a request may send here; routes that take files say more
    # What an API token must hold to use this route (a cookie session is the person at
    # the portal, who holds every scope of their own).
    scope: str | None = BILLING

    def initialize(self, ctx: Context) -> None:
        super().initialize(ctx)
        self._received: list[bytes] = []
        self._size = 0

    async def prepare(self) -> None:
        self.refuse_by_size(declared_length(self.request.headers.get("Content-Length")))
        await super().prepare()
        if self.viewer is None:
            if getattr(self, "_token_authenticated", False):
                # The hub knows the token, but it holds no scope that opens this service.
                raise Refused(403, missing_scope((), self.scope or BILLING))
            if self.hub_auth.get_token(self, in_cookie=False):
                raise Refused(401, not_signed_in(token_sent=True))
            raise Refused(
                403, "log in to the portal, or send an API token with access to this service"
            )
        if self.scope and getattr(self, "_token_authenticated", False):
            refusal = missing_scope(self.current_user.get("scopes", ()), self.scope)
            if refusal:
                raise Refused(403, refusal)

    def refuse_by_size(self, size: int | None) -> None:
        try:
            check_size(size, self.max_body)
        except BodyError as e:
            raise Refused(e.status, e.message, "body") from None

    def data_received(self, chunk: bytes) -> None:
        # A chunked body declares no size: past the limit it is counted, not kept, and
        # raw_body refuses it (the server's max_body_size ends the stream itself).
        self._size += len(chunk)
        if self._size <= self.max_body:
            self._received.append(chunk)

    def raw_body(self) -> bytes:
        """The body as sent, or 413 when it is over ``max_body``."""
        self.refuse_by_size(self._size)
        return b"".join(self._received)

    def check_xsrf_cookie(self) -> None:
        # Tokens in the Authorization header are not cookies; HubOAuth checks cookie requests.
        if not self.request.headers.get("Authorization"):
            super().check_xsrf_cookie()

    def body(self) -> dict:
        """The body's JSON object, bounded in size and depth (bodies.json_object)."""
        try:
            return json_object(self.raw_body(), self.max_body)
        except BodyError as e:
            raise Refused(e.status, e.message, "body" if e.status == 413 else None) from None

    def send(self, data: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs) -> None:
        payload = error_json(status_code, kwargs.get("exc_info", (None, None, None))[1])
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'token realm="corehour"')
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))
