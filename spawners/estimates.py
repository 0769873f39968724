"""``GET /hub/api/corehour/start-estimates``: where and when a server would start, and at
what price, before the person presses Start.

The query carries the spawn form's fields (``profile``, ``cluster``, ``cores``, ...); they go
through the same allow-list as a real start, so a bad value gets the same 400 that the start
would give. The answer lists each candidate cluster with its expected start (asked with
``sbatch --test-only`` as the person, over ssh for another centre, and shared for a few
seconds with ``auto``'s own questions), its hourly price and whether ``auto`` would pick it.
Nothing is submitted.
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from centre.options import OptionError, options_from_form

from .spawner import checked_request

ROUTE = r"/api/corehour/start-estimates"
# The form's fields are short: a query past this is refused before it is read.
MAX_QUERY = 2048


def estimate_handlers() -> list[tuple[str, type]]:
    return [(ROUTE, StartEstimatesHandler)]


class StartEstimatesHandler(APIHandler):
    @web.authenticated
    async def get(self):
        user = self.current_user
        if getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "start estimates are for a person: sign in as yourself")
        # As much as starting one's own server needs: a server's own token holds less.
        if not {"servers", f"servers!user={user.name}"} & set(self.expanded_scopes):
            raise web.HTTPError(403, f"start estimates need the scope servers!user={user.name}")
        if len(self.request.query) > MAX_QUERY:
            raise web.HTTPError(413, f"the query is over {MAX_QUERY} bytes")
        query = {
            key: [value.decode("utf-8", "replace") for value in values]
            for key, values in self.request.query_arguments.items()
        }
        try:
            fields = options_from_form(query)  # one value per field, as the form sends
        except OptionError as e:
            raise web.HTTPError(400, str(e)) from None
        spawner = user.spawner
        request = checked_request(spawner, fields)
        rows = await spawner.start_estimates(request)
        self.finish(json.dumps({"profile": request.profile, "clusters": rows}))
