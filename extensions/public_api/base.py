"""What every route of the public API does first: who asks, with which scope, and errors as JSON.

A route acts for the token's owner only.  No token, or one that was revoked, expired or
mistyped, gets 401; a token without the route's scope, a service's token, or a person the
portal does not start jobs for gets 403.  Refusals name the field and what is allowed.
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from centre.api_scopes import missing_scope, not_signed_in
from centre.errors import error_json
from centre.people import account_of, job_refusal
from centre.site import Site
from centre.slurm_cli import AS_PERSON, cluster_argv


class ApiRefused(web.HTTPError):
    """A 4xx or 5xx whose message is for the person; ``field`` names what to change."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(status, message)
        self.message = message
        self.field = field


class PublicApiHandler(APIHandler):
    def initialize(self, site: Site, **_settings) -> None:
        self.site = site

    def person(self, scope: str) -> str:
        """The caller's name, when they may use ``scope`` for themselves."""
        user = self.current_user
        if user is None:
            raise ApiRefused(401, not_signed_in(bool(self.get_auth_token())))
        if getattr(user, "kind", "user") != "user":
            raise ApiRefused(403, "the public API acts for a person: use a person's token")
        refusal = missing_scope(self.expanded_scopes, scope)
        if refusal:
            raise ApiRefused(403, refusal)
        refusal = job_refusal(account_of(user.name), self.site.hub.person_rules())
        if refusal:
            raise ApiRefused(403, refusal)
        return user.name

    def cluster(self, name: str):
        cluster = self.site.clusters.get(name)
        if cluster is None:
            raise ApiRefused(
                404,
                f"there is no cluster {name!r}; the clusters are {', '.join(self.site.clusters)}",
            )
        return cluster

    def as_person(self, cluster: str, person: str, argv: list[str]) -> list[str]:
        """``argv`` as the person on ``cluster``, through its transport."""
        return cluster_argv(
            self.site.clusters[cluster], argv, username=person, user_prefix=AS_PERSON
        )

    def json_body(self, limit: int) -> dict:
        if len(self.request.body) > limit:
            raise ApiRefused(413, f"the body is over {limit // 1024} KB", "body")
        try:
            data = json.loads(self.request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiRefused(400, "send a JSON object", "body") from None
        if not isinstance(data, dict):
            raise ApiRefused(400, "send a JSON object", "body")
        return data

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
