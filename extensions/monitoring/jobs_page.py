"""``/hub/corehour/jobs``: My jobs, every job of the person on every cluster, with how well each
ended one used what it paid for and what the idle part cost.

Slurm's accounting is the truth: one ``sacct --json`` per cluster for the person's jobs of the
last week, where that cluster keeps its records (``accounting_argv``), all clusters at once.
``/hub/api/corehour/jobs`` answers the same as JSON.
"""

from __future__ import annotations

import asyncio
import json
import time

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from centre.api_scopes import not_signed_in
from centre.pricing import RateBook
from centre.site import Site
from centre.slurm_cli import accounting_argv, failure_reason, run_command
from centre.slurm_json import SlurmOutputError, slurm_jobs, slurm_text

from .callers import require_person
from .efficiency import Efficiency, JobUse, efficiency, job_use, waste_in_words
from .history import SAMPLES_API_PATH
from .history_store import HistoryStore
from .overview import wait_in_words

SLURM_TIMEOUT = 30.0
WINDOW = "now-7days"
JOBS_API_PATH = "api/corehour/jobs"


def jobs_handlers(site: Site, history: HistoryStore) -> list[tuple[str, type, dict]]:
    rates = RateBook.from_site(site.billing) if site.billing else None
    settings = {"site": site, "rates": rates, "history": history}
    return [
        (r"/corehour/jobs", MyJobsPage, settings),
        (rf"/{JOBS_API_PATH}", MyJobsApi, settings),
    ]


class _MyJobs:
    """The rows both the page and the API show; mixed into a hub handler."""

    def initialize(self, site: Site, rates: RateBook | None, history: HistoryStore) -> None:
        self.site = site
        self.rates = rates or RateBook({})
        self.history = history

    async def rows(self) -> tuple[list[dict], list[str]]:
        """Every job of the person, newest first, and a sentence per cluster that did not answer."""
        answers, summaries = await asyncio.gather(
            asyncio.gather(*(self._cluster_jobs(name) for name in self.site.clusters)),
            asyncio.to_thread(self.history.summaries, self.current_user.name),
        )
        rows = [row for jobs, _ in answers for row in jobs]
        for row in rows:
            key = (row["cluster"], int(row["job_id"]) if str(row["job_id"]).isdigit() else 0)
            samples, gpu_percent = summaries.get(key, (0, None))
            row["history_samples"] = samples
            if row["efficiency"] is not None and gpu_percent is not None:
                row["efficiency"]["gpu_percent"] = round(gpu_percent, 1)
        rows.sort(key=lambda row: (row["start"] or 2**62, row["job_id"]), reverse=True)
        return rows, [problem for _, problem in answers if problem]

    async def _cluster_jobs(self, name: str) -> tuple[list[dict], str]:
        cluster = self.site.clusters[name]
        argv = ["sacct", "--json", "--user", self.current_user.name, "--starttime", WINDOW]
        result = await run_command(accounting_argv(name, cluster, argv), timeout=SLURM_TIMEOUT)
        if not result.ok:
            return [], f"{name}: {failure_reason(cluster, result)}"
        try:
            raw_jobs = await asyncio.to_thread(slurm_jobs, result.stdout, "sacct-steps")
        except SlurmOutputError as e:
            return [], f"{name}: {e}"
        # Slurm 22.05's sacct ignores --user when it prints JSON and lists everyone's jobs:
        # only the person's own rows may reach the page.
        person = self.current_user.name
        uses = [job_use(raw, name) for raw in raw_jobs if slurm_text(raw.get("user")) == person]
        return [_row(use, efficiency(use, self.rates)) for use in uses if use.job_id], ""


class MyJobsPage(_MyJobs, BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        rows, problems = await self.rows()
        html = await self.render_template(
            "corehour-jobs.html",
            jobs=rows,
            problems=problems,
            now=int(time.time()),
            # "When would a job start now?": the page asks the spawn form's estimates API.
            profiles=[(slug, p.display_name) for slug, p in self.site.profiles.items()],
            estimates_url=url_path_join(self.hub.base_url, "api/corehour/start-estimates"),
            samples_url=url_path_join(self.hub.base_url, SAMPLES_API_PATH),
        )
        self.finish(html)


class MyJobsApi(_MyJobs, APIHandler):
    """An API handler, so a personal API token is accepted (JupyterHub reads tokens only in
    its API handlers); a browser's session works too."""

    async def get(self) -> None:
        if self.current_user is None:
            raise web.HTTPError(401, not_signed_in(bool(self.get_auth_token())))
        require_person(
            self,
            "My jobs are a person's own: sign in as yourself",
            "My jobs need the scope {scope}",
        )
        rows, problems = await self.rows()
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"jobs": rows, "problems": problems}))


def _row(use: JobUse, result: Efficiency | None) -> dict:
    row = {
        "cluster": use.cluster,
        "job_id": use.job_id,
        "name": use.name,
        "partition": use.partition,
        "account": use.account,
        "state": use.state,
        "start": use.start,
        "end": use.end,
        "elapsed_s": use.elapsed_s,
        "elapsed": wait_in_words(use.elapsed_s),
        "cores": use.cores,
        "memory_gb": round(use.memory_mb / 1024, 2),
        "gpus": use.gpus,
        "efficiency": None,
    }
    if result is not None:
        row["efficiency"] = {
            "cpu_percent": result.cpu_percent,
            "memory_percent": result.memory_percent,
            "idle_cores": result.idle_cores,
            "unused_memory_gb": result.unused_memory_gb,
            "waste_mc": result.waste_mc,
            "waste_credits": result.waste_credits,
            "waste": waste_in_words(use, result, wait_in_words),
            "gpu_note": result.gpu_note,
            # From the job's own minute samples, where it reported them (servers).
            "gpu_percent": None,
        }
    return row
