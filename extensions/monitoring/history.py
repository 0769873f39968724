"""The job history's two doors: running jobs report their minutes, people read their own.

``POST /hub/api/corehour/job-samples`` takes a job's report (centre/job_samples.py).  It is a
plain request handler, not one of the hub's: the job shows the key the spawner gave it, which
the hub checks with one HMAC, so a report costs no token lookup and no database read beyond
the write.  The key names the person and the cluster; the job must be one of that person's
running servers there (the hub has those in memory) or, for an app's batch job, a job of that
person that has started, in the status board's recent ``squeue`` of that cluster.  So nobody
can write into someone else's history.

``GET /hub/api/corehour/job-samples?cluster=…&job_id=…`` returns the person's own samples of
one job for My jobs' charts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from jupyterhub.apihandlers.base import APIHandler
from sqlalchemy.exc import SQLAlchemyError
from tornado import web

from centre.job_samples import (
    FIELDS,
    LARGEST_JOB_ID,
    MAX_REPORT_BYTES,
    REPORT_PATH,
    ReportError,
    key_owner,
    parse_report,
)
from centre.site import Site

from .callers import require_person
from .history_store import HistoryStore

log = logging.getLogger("corehour.monitoring")
SAMPLES_API_PATH = f"api/{REPORT_PATH}"


# (cluster, job id) -> the user of that job once it has started; "" when no such job has,
# None when Slurm did not answer.
JobOwner = Callable[[str, int], Awaitable[str | None]]


def history_handlers(
    site: Site, store: HistoryStore, secret: bytes, job_owner: JobOwner
) -> list[tuple]:
    settings = {"site": site, "store": store, "secret": secret, "job_owner": job_owner}
    return [(rf"/{SAMPLES_API_PATH}", JobSamples, settings)]


def running_server_job(spawners, cluster: str, job_id: int) -> bool:
    """Whether one of these spawners runs ``job_id`` on ``cluster`` (read, never changed)."""
    wanted = str(job_id)
    return any(
        str(getattr(spawner, "job_id", "") or "") == wanted
        and getattr(spawner, "cluster", "") == cluster
        for spawner in spawners
    )


class JobSamples(APIHandler):
    def initialize(
        self, site: Site, store: HistoryStore, secret: bytes, job_owner: JobOwner
    ) -> None:
        self.site = site
        self.store = store
        self.secret = secret
        self.job_owner = job_owner

    # A report is signed by its key, not by a cookie: there is no form to forge.  Reading
    # goes through the hub's own check.
    def check_xsrf_cookie(self) -> None:
        if self.request.method != "POST":
            super().check_xsrf_cookie()

    async def prepare(self) -> None:
        # The hub's own prepare() looks the caller up by token or cookie; a report has
        # neither, only its key, so only reading the history goes through it.
        if self.request.method != "POST":
            await super().prepare()

    async def post(self) -> None:
        owner = key_owner(self.secret, _bearer(self.request.headers.get("Authorization", "")))
        if owner is None:
            raise web.HTTPError(403, "This job's usage key is not one this hub made.")
        username, cluster = owner
        if cluster not in self.site.clusters:
            raise web.HTTPError(403, f"The key names cluster {cluster!r}, which this site has not.")
        if len(self.request.body) > MAX_REPORT_BYTES:
            raise web.HTTPError(413, f"A report may be {MAX_REPORT_BYTES} bytes at most.")
        try:
            report = parse_report(json.loads(self.request.body or b"null"), time.time())
        except (ValueError, RecursionError, ReportError) as e:
            raise web.HTTPError(400, f"This report was not stored: {e}") from None
        await self._check_job_of(username, cluster, report.job_id)
        try:
            stored = await asyncio.to_thread(self._store, cluster, report.job_id, username, report)
        except SQLAlchemyError as e:
            # Not the hub's database: its session must not be rolled back for this.
            log.warning("job history: could not store a report of %s: %s", username, e)
            raise web.HTTPError(503, "The job history cannot be written now; try later.") from None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"stored": stored}))

    async def _check_job_of(self, username: str, cluster: str, job_id: int) -> None:
        """Refuse a report unless the job is the person's and has started, on that cluster."""
        # Servers first: the hub keeps everyone with a running server in memory.
        user = next((u for u in self.users.values() if u.name == username), None)
        if user is not None and running_server_job(user.spawners.values(), cluster, job_id):
            return
        owner = await self.job_owner(cluster, job_id)
        if owner is None:
            # Kept by the job and sent again: the hub cannot tell whose the job is right now.
            raise web.HTTPError(503, f"Slurm on {cluster} did not answer; try again later.")
        if owner != username:
            raise web.HTTPError(
                403,
                f"Job {job_id} on {cluster} is not a started job of {username}; "
                "only a job's own process reports its use.",
            )

    def _store(self, cluster: str, job_id: int, username: str, report) -> int:
        # One trip off the event loop: the write, and now and then the thinning.
        stored = self.store.add(cluster, job_id, username, report.samples)
        self.store.thin_if_due()
        return stored

    @web.authenticated
    async def get(self) -> None:
        require_person(
            self,
            "A job's history is its owner's: sign in as yourself",
            "A job's history needs the scope {scope}",
        )
        cluster = self.get_argument("cluster", "")
        if cluster not in self.site.clusters:
            allowed = ", ".join(sorted(self.site.clusters))
            raise web.HTTPError(400, f"cluster: {cluster[:40]!r} is not one of: {allowed}")
        job_text = self.get_argument("job_id", "")
        if not (job_text.isascii() and job_text.isdecimal()) or not (
            1 <= int(job_text) <= LARGEST_JOB_ID
        ):
            raise web.HTTPError(400, f"job_id: a job number from 1 to {LARGEST_JOB_ID}")
        samples = await asyncio.to_thread(
            self.store.samples, self.current_user.name, cluster, int(job_text)
        )
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"fields": FIELDS, "samples": [s.as_list() for s in samples]}))


def _bearer(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""
