"""``/hub/api/corehour/transfers``: a person copies a folder between clusters' homes.

``POST`` with ``{"from_cluster", "from_path", "to_cluster", "to_path"}`` starts a copy as the
person who calls (never anyone else) and answers 202 with its id; ``GET .../<id>`` tells its
progress, and ``GET`` lists the caller's latest copies.  A person sees only their own copies;
``/hub/corehour/copies`` is the page for people (page.py).  Copies live in the hub process: a hub
restart forgets them (the files already copied stay).
"""

from __future__ import annotations

import asyncio
import json
import pwd
import secrets

from jupyterhub.apihandlers.base import APIHandler
from tornado import web

from centre.errors import FieldError
from centre.people import account_of, job_refusal
from centre.site import Site

from .copy import Progress, run_copy
from .page import CopiesPage
from .plan import check_request, commands

SUDO = ("sudo", "-n", "-u", "{username}")
# Per hub process: transfer id -> (person, what is copied where, progress).  Old entries go
# when it grows.
_transfers: dict[str, tuple[str, dict, Progress]] = {}
_running: set[asyncio.Task] = set()
KEEP = 1000
# Four short fields: a body past this is refused before it is parsed.
MAX_BODY = 4096
# A person's list shows their latest copies, newest first.
LISTED = 20


def transfer_handlers(site: Site) -> list[tuple[str, type, dict]]:
    return [
        (r"/corehour/copies", CopiesPage, {"site": site}),
        (r"/api/corehour/transfers", TransfersHandler, {"site": site}),
        (r"/api/corehour/transfers/([A-Za-z0-9_-]{8,64})", TransferHandler, {"site": site}),
    ]


class _PersonHandler(APIHandler):
    def initialize(self, site: Site) -> None:
        self.site = site

    def person(self) -> str:
        user = self.current_user
        if user is None or getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "a copy runs as a person: sign in as yourself")
        # The power to start one's own servers: a server's own token, which holds less,
        # cannot start copies.
        if not {"servers", f"servers!user={user.name}"} & set(self.expanded_scopes):
            raise web.HTTPError(403, f"a copy needs the scope servers!user={user.name}")
        refusal = job_refusal(account_of(user.name), self.site.hub.person_rules())
        if refusal is not None:
            raise web.HTTPError(403, f"no copy: {refusal}")
        return user.name


class TransfersHandler(_PersonHandler):
    async def post(self) -> None:
        person = self.person()
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413, f"body: at most {MAX_BODY} bytes")
        try:
            raw = json.loads(self.request.body or b"null")
            request = check_request(raw, self.site)
        except json.JSONDecodeError:
            raise web.HTTPError(400, "body: send a JSON object") from None
        except FieldError as e:
            raise web.HTTPError(400, str(e)) from None
        home = pwd.getpwnam(person).pw_dir
        plan = commands(self.site, person, home, request, SUDO)
        transfer_id = secrets.token_urlsafe(12)
        progress = Progress()
        if len(_transfers) >= KEEP:
            for old in list(_transfers)[: KEEP // 2]:
                _transfers.pop(old, None)
        route = {
            "from_cluster": request.from_cluster,
            "from_path": request.from_path,
            "to_cluster": request.to_cluster,
            "to_path": request.to_path,
        }
        _transfers[transfer_id] = (person, route, progress)
        task = asyncio.ensure_future(run_copy(plan, progress))
        _running.add(task)
        task.add_done_callback(_running.discard)
        self.log.info(
            "%s copies %s:%s to %s:%s (transfer %s)", person, request.from_cluster,
            request.from_path, request.to_cluster, request.to_path, transfer_id,
        )  # fmt: skip
        self.set_status(202)
        self.write(json.dumps({"id": transfer_id, **route, **progress.as_json()}))

    def get(self) -> None:
        """The caller's latest copies, newest first."""
        person = self.person()
        mine = [(tid, route, p) for tid, (who, route, p) in _transfers.items() if who == person]
        latest = list(reversed(mine))[:LISTED]
        self.write(
            json.dumps(
                {"transfers": [{"id": tid, **route, **p.as_json()} for tid, route, p in latest]}
            )
        )


class TransferHandler(_PersonHandler):
    def get(self, transfer_id: str) -> None:
        person = self.person()
        found = _transfers.get(transfer_id)
        if found is None or found[0] != person:
            raise web.HTTPError(404, "no such copy of yours")
        _who, route, progress = found
        self.write(json.dumps({"id": transfer_id, **route, **progress.as_json()}))
