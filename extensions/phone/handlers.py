"""``/m``: the phone status view, an installable web app (docs/phone.md).

``/hub/m/`` is one small page with its style and script inline: it paints at once, even on a
slow phone, and its service worker keeps it for when the phone is offline.  The page asks
``/hub/api/corehour/phone`` for the person's jobs, servers and balances every few seconds while
it is open; cancelling a batch job or stopping a server goes through the public API and
JupyterHub's own, after the person confirms.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from centre.api_scopes import JOBS, missing_scope, not_signed_in
from centre.pricing import RateBook
from centre.site import Site
from centre.slurm_json import JobInfo

from .status import PhoneLedger, Server, account_rows, job_rows

HERE = Path(__file__).parent
SHELL = HERE / "shell.html"
WORKER = HERE / "sw.js"
ICON = HERE / "icon.svg"
STATUS_API_PATH = "api/corehour/phone"
# The shared squeue answer may be this old when a phone asks.
FRESH_S = 5.0

LiveQueue = Callable[[str, float], Awaitable[dict[str, JobInfo] | None]]
# username → their accounts and latest notifications, or None when the ledger does not answer.
Ledger = Callable[[str], Awaitable[PhoneLedger | None]]


def phone_handlers(
    site: Site, live_queue: LiveQueue, ledger: Ledger | None
) -> list[tuple[str, type, dict]]:
    rates = RateBook.from_site(site.billing) if site.billing else None
    data = {"site": site, "live_queue": live_queue, "ledger": ledger, "rates": rates}
    return [
        (r"/m", web.RedirectHandler, {"url": "m/"}),
        (r"/m/", ShellPage, {}),
        (r"/m/sw\.js", StaticPart, {"path": WORKER, "kind": "text/javascript"}),
        (r"/m/icon\.svg", StaticPart, {"path": ICON, "kind": "image/svg+xml"}),
        (r"/m/manifest\.webmanifest", Manifest, {}),
        (rf"/{STATUS_API_PATH}", PhoneStatus, data),
    ]


def _version(*paths: Path) -> str:
    """Changes whenever the shell or the worker does, so phones fetch the new ones."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def _shell(base: str) -> str:
    """The page as sent: read and versioned once per process, not per phone."""
    return (
        SHELL.read_text().replace("{{base}}", base).replace("{{version}}", _version(SHELL, WORKER))
    )


class ShellPage(BaseHandler):
    """The same bytes for everyone (the service worker caches it): who is signed in, and
    their data, come from the status API."""

    @web.authenticated
    def get(self) -> None:
        # Sets the _xsrf cookie the page's cancel and stop requests send back.
        self.xsrf_token  # noqa: B018
        html = _shell(self.hub.base_url)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(html)


class StaticPart(BaseHandler):
    def initialize(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind

    def get(self) -> None:
        self.set_header("Content-Type", self.kind)
        self.set_header("Cache-Control", "no-cache")
        self.finish(self.path.read_bytes())


class Manifest(BaseHandler):
    def get(self) -> None:
        start = url_path_join(self.hub.base_url, "m/")
        self.set_header("Content-Type", "application/manifest+json")
        self.finish(
            json.dumps(
                {
                    "name": "corehour: my jobs",
                    "short_name": "corehour",
                    "start_url": start,
                    "scope": start,
                    "display": "standalone",
                    "background_color": "#ffffff",
                    "theme_color": "#0b5394",
                    "icons": [
                        {
                            "src": url_path_join(start, "icon.svg"),
                            "sizes": "any",
                            "type": "image/svg+xml",
                            "purpose": "any",
                        }
                    ],
                }
            )
        )


class PhoneStatus(APIHandler):
    """The person's jobs (servers and batch jobs on every cluster), their costs and balances."""

    def initialize(
        self,
        site: Site,
        live_queue: LiveQueue,
        ledger: Ledger | None,
        rates: RateBook | None,
    ) -> None:
        self.site = site
        self.live_queue = live_queue
        self.ledger = ledger
        self.rates = rates

    async def get(self) -> None:
        user = self.current_user
        if user is None:
            raise web.HTTPError(401, not_signed_in(bool(self.get_auth_token())))
        if getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "the status view is a person's own: use a person's token")
        refusal = missing_scope(self.expanded_scopes, JOBS)
        if refusal:
            raise web.HTTPError(403, refusal)
        now = int(time.time())
        clusters = list(self.site.clusters)
        answers, ledger = await asyncio.gather(
            asyncio.gather(*(self.live_queue(name, FRESH_S) for name in clusters)),
            self.ledger(user.name) if self.ledger else _nothing(),
        )
        accounts = ledger.accounts if ledger else None
        queues = {name: jobs for name, jobs in zip(clusters, answers, strict=True) if jobs}
        problems = [
            f"Slurm on {name} does not answer; its jobs are not shown"
            for name, jobs in zip(clusters, answers, strict=True)
            if jobs is None
        ]
        if self.site.billing is not None and accounts is None:
            problems.append(
                "Balances cannot be shown right now: the billing ledger does not answer"
            )
        by_name = {a.name: a for a in accounts or ()}
        jobs = job_rows(user.name, queues, self._servers(user), by_name, self.rates, now)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            json.dumps(
                {
                    "user": user.name,
                    "now": now,
                    "currency": self.site.billing.currency if self.site.billing else None,
                    "jobs": jobs,
                    "accounts": account_rows(accounts or (), jobs, now),
                    "notifications": ledger.notifications if ledger else [],
                    "problems": problems,
                }
            )
        )

    def _servers(self, user) -> list[Server]:
        servers = []
        for name, spawner in user.spawners.items():
            cluster, job_id = getattr(spawner, "cluster", ""), getattr(spawner, "job_id", "")
            if spawner.active and cluster and job_id:
                url = url_path_join(user.url, name, "/") if name else user.url
                servers.append(Server(name, cluster, str(job_id), url))
        return servers


async def _nothing() -> None:
    return None
