"""``/hub/api/corehour/jobs/<cluster>[/<id>[/output|/cancel]]``: the public API's batch jobs.

``POST .../jobs/<cluster>`` submits a job with the same allow-list as Job Composer and the
spawn form (centre/batch_jobs.py) and the same admission as a server (the account, a
course's rules, the money: centre/admission.py); ``GET .../<id>`` follows it: its state,
place in the queue and expected start, run time and cost so far; ``GET .../output`` reads
the end of its output; ``POST .../cancel`` cancels it.  The list of a person's jobs is My
jobs' API (``GET /hub/api/corehour/jobs``).  Everything runs as the person (sudo -u, the
sudo rule's sbatch, scancel and tail), and only for the person's own jobs: someone else's
job is "not found", whether it exists or not.
"""

from __future__ import annotations

import asyncio
import pwd
import time
from collections.abc import Awaitable, Callable

from centre.admission import Admission, AdmissionRefused, AdmissionStep, admit
from centre.api_scopes import JOBS
from centre.batch_jobs import MAX_SCRIPT_BYTES, check_batch_job, render_batch_job
from centre.errors import FieldError
from centre.pricing import NoRateError, RateBook, Tres, format_credits, hourly_price_mc
from centre.site import Site
from centre.slurm_cli import accounting_argv, failure_reason, run_command
from centre.slurm_json import JobInfo, SlurmOutputError, queue_position, slurm_jobs

from .base import ApiRefused, PublicApiHandler
from .job_view import JobView, find_accounted, from_queue

SLURM_TIMEOUT = 30.0
# A script of MAX_SCRIPT_BYTES, escaped in JSON, and the other fields.
MAX_BODY = 2 * MAX_SCRIPT_BYTES + 4096
OUTPUT_BYTES = 64 * 1024
# How old the shared squeue answer may be when someone follows a job.
FRESH_S = 3.0
RECHECK_S = 1.0
CLUSTER = r"([a-z][a-z0-9_-]{0,31})"
JOB_ID = r"([0-9]{1,12})"

# cluster, newest acceptable age in seconds → that cluster's queue by job id, or None when
# Slurm did not answer.  The hub's root passes the spawners' shared status board.
LiveQueue = Callable[[str, float], Awaitable[dict[str, JobInfo] | None]]


def job_handlers(
    site: Site, admission: list[AdmissionStep], live_queue: LiveQueue
) -> list[tuple[str, type, dict]]:
    rates = RateBook.from_site(site.billing) if site.billing else None
    settings = {"site": site, "admission": admission, "live_queue": live_queue, "rates": rates}
    return [
        (rf"/api/corehour/jobs/{CLUSTER}", SubmitHandler, settings),
        (rf"/api/corehour/jobs/{CLUSTER}/{JOB_ID}", JobHandler, settings),
        (rf"/api/corehour/jobs/{CLUSTER}/{JOB_ID}/output", OutputHandler, settings),
        (rf"/api/corehour/jobs/{CLUSTER}/{JOB_ID}/cancel", CancelHandler, settings),
    ]


class _JobsHandler(PublicApiHandler):
    def initialize(
        self,
        site: Site,
        admission: list[AdmissionStep],
        live_queue: LiveQueue,
        rates: RateBook | None,
    ) -> None:
        super().initialize(site)
        self.admission = admission
        self.live_queue = live_queue
        self.rates = rates

    async def own_job(self, cluster: str, job_id: str, person: str) -> JobView:
        """The person's job ``job_id``; 404 for a job that is not theirs or not there."""
        self.cluster(cluster)
        view = await self._from_queue(cluster, job_id)
        if view is None:
            view = await self._from_accounting(cluster, job_id)
        if view is None or view.user != person:
            raise ApiRefused(404, f"you have no job {job_id} on {cluster}")
        return view

    async def _from_queue(self, cluster: str, job_id: str) -> JobView | None:
        queue = await self.live_queue(cluster, FRESH_S)
        job = (queue or {}).get(job_id)
        if job is None and queue is not None:
            # Submitted since that answer, perhaps: one newer look (shared by whoever asks
            # now) before sacct, which may not have a job of a second ago yet.
            queue = await self.live_queue(cluster, RECHECK_S)
            job = (queue or {}).get(job_id)
        if job is None:
            return None
        return from_queue(cluster, job, int(time.time()), queue_position(job_id, queue.values()))

    async def _from_accounting(self, cluster: str, job_id: str) -> JobView | None:
        argv = ["sacct", "--json", "--jobs", job_id]
        result = await run_command(
            accounting_argv(cluster, self.site.clusters[cluster], argv), timeout=SLURM_TIMEOUT
        )
        if not result.ok:
            raise ApiRefused(
                503, f"{cluster}: {failure_reason(self.site.clusters[cluster], result)}"
            )
        try:
            jobs = await asyncio.to_thread(slurm_jobs, result.stdout, "sacct")
        except SlurmOutputError as e:
            raise ApiRefused(503, f"{cluster}: {e}") from None
        return find_accounted(cluster, jobs, job_id, int(time.time()))

    def cost_so_far(self, view: JobView) -> str | None:
        """What the job has cost at the standard rate so far; the ledger's bill is the
        billing API's (it knows the account's price tier)."""
        if self.rates is None or not view.elapsed_s:
            return None
        try:
            price = self.rates.price_at(
                view.cluster, view.partition, view.start or int(time.time())
            )
        except NoRateError:
            return None
        tres = Tres(cpus=view.cores, gpus=view.gpus, mem_mb=view.memory_mb)
        return format_credits(hourly_price_mc(price, tres) * view.elapsed_s // 3600)

    def job_json(self, view: JobView) -> dict:
        return {
            **view.to_json(),
            "cost_so_far": self.cost_so_far(view),
            "currency": self.site.billing.currency if self.site.billing else None,
        }


class SubmitHandler(_JobsHandler):
    async def post(self, cluster: str) -> None:
        person = self.person(JOBS)
        self.cluster(cluster)
        raw = self.json_body(MAX_BODY)
        if raw.get("cluster", cluster) != cluster:
            raise ApiRefused(
                400, f"the URL names cluster {cluster}; leave it out of the body", "cluster"
            )
        try:
            job = check_batch_job({**raw, "cluster": cluster}, self.site, strict=True)
        except FieldError as e:
            raise ApiRefused(400, str(e), e.field) from None
        try:
            admission = await admit(self.admission, Admission(person, job.request))
        except AdmissionRefused as e:
            raise ApiRefused(e.status, str(e), e.field) from None
        workdir = pwd.getpwnam(person).pw_dir
        script = render_batch_job(job, workdir, admission.account or None)
        result = await run_command(
            self.as_person(cluster, person, ["sbatch", "--parsable"]),
            input_text=script,
            timeout=SLURM_TIMEOUT,
        )
        if not result.ok:
            reason = failure_reason(self.site.clusters[cluster], result)
            # Slurm's own refusal (a limit, a held account) is the person's to read.
            status = 409 if result.returncode == 1 and "sbatch: error" in result.stderr else 503
            raise ApiRefused(status, f"{cluster} did not take the job: {reason}")
        job_id = result.stdout.strip().split(";")[0]
        self.log.info("%s submitted job %s on %s through the API", person, job_id, cluster)
        self.send(
            {
                "cluster": cluster,
                "job_id": job_id,
                "name": job.name,
                "account": admission.account or None,
                "output": f"{workdir}/{job.name}-{job_id}.out",
            },
            status=201,
        )


class JobHandler(_JobsHandler):
    async def get(self, cluster: str, job_id: str) -> None:
        person = self.person(JOBS)
        self.send(self.job_json(await self.own_job(cluster, job_id, person)))


class OutputHandler(_JobsHandler):
    async def get(self, cluster: str, job_id: str) -> None:
        person = self.person(JOBS)
        view = await self.own_job(cluster, job_id, person)
        if not view.output:
            raise ApiRefused(404, f"Slurm does not say where job {job_id} writes its output")
        # As the person: they read what they may read, and nothing else.
        result = await run_command(
            self.as_person(cluster, person, ["tail", "-c", str(OUTPUT_BYTES), view.output]),
            timeout=SLURM_TIMEOUT,
        )
        if not result.ok:
            if view.state == "PENDING":
                text = ""
            else:
                raise ApiRefused(
                    404, f"no output at {view.output} on {cluster}: {result.stderr.strip()[:300]}"
                )
        else:
            text = result.stdout
        self.send(
            {
                "cluster": cluster,
                "job_id": job_id,
                "path": view.output,
                "state": view.state,
                "ended": view.ended,
                "text": text,
                "truncated": len(text.encode()) >= OUTPUT_BYTES,
            }
        )


class CancelHandler(_JobsHandler):
    async def post(self, cluster: str, job_id: str) -> None:
        person = self.person(JOBS)
        view = await self.own_job(cluster, job_id, person)
        if view.ended:
            raise ApiRefused(409, f"job {job_id} on {cluster} has already ended ({view.state})")
        result = await run_command(
            self.as_person(cluster, person, ["scancel", job_id]), timeout=SLURM_TIMEOUT
        )
        if not result.ok:
            raise ApiRefused(
                503, f"{cluster}: {failure_reason(self.site.clusters[cluster], result)}"
            )
        self.log.info("%s cancelled job %s on %s through the API", person, job_id, cluster)
        self.send({"cluster": cluster, "job_id": job_id, "cancelled": True}, status=202)
