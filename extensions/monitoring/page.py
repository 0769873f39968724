"""``/hub/corehour/overview``: the admins' view of every cluster and of the whole network.

It asks each cluster once per page view (``sinfo --json`` and ``squeue --json``, through the
cluster's runner, over ssh for another centre, all clusters at once).  Admins only: anyone
else gets 403.
"""

from __future__ import annotations

import asyncio
import time

from jupyterhub.handlers.base import BaseHandler
from tornado import web

from centre.site import Site
from centre.slurm_cli import cluster_argv, failure_reason, run_command
from centre.slurm_json import SlurmOutputError, parse_sinfo_json, parse_squeue_json

from .overview import cluster_view, network_view, wait_in_words

SLURM_TIMEOUT = 20.0


def overview_handlers(site: Site) -> list[tuple[str, type, dict]]:
    return [(r"/corehour/overview", OverviewPage, {"site": site})]


class OverviewPage(BaseHandler):
    def initialize(self, site: Site) -> None:
        self.site = site

    @web.authenticated
    async def get(self) -> None:
        if not self.current_user.admin:
            raise web.HTTPError(403, "the cluster overview is for the portal's admins")
        now = int(time.time())
        views = await asyncio.gather(*(self._view(name, now) for name in self.site.clusters))
        html = await self.render_template(
            "corehour-overview.html",
            clusters=views,
            network=network_view(views),
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
