"""``/hub/corehour/overview``: the admins' view of every cluster and of the whole network.

It asks each cluster once per page view (``sinfo --json`` and ``squeue --json``, through the
cluster's runner, over ssh for another centre, all clusters at once), and for the last day's
use and top accounts, ``sacct --json`` of the day where the cluster keeps its accounting, at
most once every few minutes (a site's day is tens of thousands of jobs).  Admins only: anyone
else gets 403.
"""

from __future__ import annotations

import asyncio
import time

from jupyterhub.handlers.base import BaseHandler
from tornado import web

from centre.pricing import RateBook, format_credits
from centre.site import Site
from centre.slurm_cli import accounting_argv, cluster_argv, failure_reason, run_command
from centre.slurm_json import SlurmOutputError, parse_sinfo_json, parse_squeue_json, slurm_jobs

from .efficiency import JobUse, job_use
from .last_day import LastDay, last_day
from .overview import cluster_view, network_view, wait_in_words

SLURM_TIMEOUT = 20.0
# The day's accounting is read again at most this often, per cluster.
DAY_CACHE_SECONDS = 300


def overview_handlers(site: Site) -> list[tuple[str, type, dict]]:
    rates = RateBook.from_site(site.billing) if site.billing else RateBook({})
    # cluster -> (when read, its jobs of the day); shared by every view of the page
    days: dict[str, tuple[float, list[JobUse]]] = {}
    return [(r"/corehour/overview", OverviewPage, {"site": site, "rates": rates, "days": days})]


class OverviewPage(BaseHandler):
    def initialize(
        self, site: Site, rates: RateBook, days: dict[str, tuple[float, list[JobUse]]]
    ) -> None:
        self.site = site
        self.rates = rates
        self.days = days

    @web.authenticated
    async def get(self) -> None:
        if not self.current_user.admin:
            raise web.HTTPError(403, "the cluster overview is for the portal's admins")
        now = int(time.time())
        views = await asyncio.gather(*(self._view(name, now) for name in self.site.clusters))
        # ?fresh=1 (the page's "read again" link) reads the day's accounting now.
        fresh = self.get_argument("fresh", "") == "1"
        days = await asyncio.gather(
            *(self._last_day(view.name, view.cpus, now, fresh) for view in views)
        )
        html = await self.render_template(
            "corehour-overview.html",
            clusters=views,
            network=network_view(views),
            days=days,
            credits=format_credits,
            wait_in_words=wait_in_words,
        )
        self.finish(html)

    async def _view(self, name: str, now: int):
        cluster = self.site.clusters[name]
        nodes_run, jobs_run = await asyncio.gather(
            run_command(cluster_argv(cluster, ["sinfo", "--json"]), timeout=SLURM_TIMEOUT),
            run_command(
                cluster_argv(cluster, ["squeue", "--all", "--json"]), timeout=SLURM_TIMEOUT
            ),
        )
        for result in (nodes_run, jobs_run):
            if not result.ok:
                return cluster_view(name, None, None, now, failure_reason(cluster, result))
        try:
            nodes = parse_sinfo_json(nodes_run.stdout)
            jobs = parse_squeue_json(jobs_run.stdout)
        except SlurmOutputError as e:
            return cluster_view(name, None, None, now, str(e))
        return cluster_view(name, nodes, jobs, now)

    async def _last_day(self, name: str, cpus: int, now: int, fresh: bool) -> LastDay:
        jobs = await self._day_jobs(name, fresh)
        if isinstance(jobs, str):
            return LastDay(name, error=jobs)
        return last_day(name, jobs, cpus, self.rates, now)

    async def _day_jobs(self, name: str, fresh: bool) -> list[JobUse] | str:
        cached = self.days.get(name)
        if cached and not fresh and time.monotonic() - cached[0] < DAY_CACHE_SECONDS:
            return cached[1]
        cluster = self.site.clusters[name]
        argv = ["sacct", "--json", "--allusers", "--starttime", "now-1days"]
        result = await run_command(accounting_argv(name, cluster, argv), timeout=SLURM_TIMEOUT)
        if not result.ok:
            return failure_reason(cluster, result)  # not cached: the next view asks again
        try:
            raw = await asyncio.to_thread(slurm_jobs, result.stdout, "sacct-steps")
        except SlurmOutputError as e:
            return str(e)
        jobs = [job_use(job, name) for job in raw]
        self.days[name] = (time.monotonic(), jobs)
        return jobs
