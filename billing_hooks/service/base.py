"""Request handling shared by the billing API and pages: who is asking, and errors for people."""

from __future__ import annotations

import json
from http import HTTPStatus

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from billing_hooks.ledger import LedgerError
from billing_hooks.service.access import Forbidden, NotFound, Viewer
from billing_hooks.service.context import Context


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


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    ctx: Context
    viewer: Viewer | None = None

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx

    async def prepare(self) -> None:
        user = self.current_user
        if user:
            name = user["name"]
            self.viewer = Viewer(name, await self.ctx.hub.is_admin(name))


class ApiHandler(BaseHandler):
    async def prepare(self) -> None:
        await super().prepare()
        if self.viewer is None:
            raise Refused(
                403, "log in to the portal, or send an API token with access to this service"
            )

    def check_xsrf_cookie(self) -> None:
        # Tokens in the Authorization header are not cookies; HubOAuth checks cookie requests.
        if not self.request.headers.get("Authorization"):
            super().check_xsrf_cookie()

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}", parse_constant=_no_constants)
        except ValueError as e:
            raise Refused(400, f"the body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise Refused(400, "the body must be a JSON object")
        return data

    def send(self, data: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = getattr(error, "message", None) or getattr(error, "log_message", None)
        payload = {
            "status": status_code,
            "message": message or HTTPStatus(status_code).phrase,
        }
        if getattr(error, "field", None):
            payload["field"] = error.field
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number")
