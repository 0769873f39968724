"""Where a starting notebook server tells the hub its port.

batchspawner 1.3.0 registers ``/hub/api/batchspawner``, which copies *every*
key of the JSON body onto the spawner with ``setattr``.  The body comes from
code running in the user's job with the user's token, so a user could rewrite
their own spawner's settings (limits included).  This module replaces that
route with one that accepts a port number and nothing else.
"""

from __future__ import annotations

import hmac
import json

from jupyterhub.apihandlers import APIHandler, default_handlers
from tornado import web

ROUTE = r"/api/batchspawner"


class PortReportHandler(APIHandler):
    @web.authenticated
    def post(self):
        token = self.get_auth_token() or ""
        if getattr(self.current_user, "kind", "user") != "user":
            raise web.HTTPError(404, "Only a starting server can report its port.")
        spawner = next(
            (
                s
                for s in self.current_user.spawners.values()
                if s.api_token and hmac.compare_digest(s.api_token, token)
            ),
            None,
        )
        if spawner is None:
            raise web.HTTPError(404, "This token belongs to no starting server.")
        body = self.get_json_body()
        if not isinstance(body, dict) or set(body) != {"port"}:
            raise web.HTTPError(400, 'Send exactly {"port": <number>}.')
        port = body["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise web.HTTPError(400, "port must be a whole number from 1 to 65535.")
        spawner.port = port
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


def install() -> None:
    """Swap batchspawner's handler for ours (idempotent)."""
    default_handlers[:] = [h for h in default_handlers if h[0] != ROUTE]
    default_handlers.append((ROUTE, PortReportHandler))
