"""The pure part every app shares: checking resources, the batch script, the price, a job's state.

An app's heavy work is a separate Slurm batch job.  Its resources go through the same
allow-list as notebook servers (``centre.options``), so an app can never ask for more
than the person's profile allows; the script is rendered from checked values only.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

# The kernel's checks, as every app has imported them from here.
from centre.batch_jobs import OUTPUT_PATTERN
from centre.batch_jobs import batch_script as kernel_batch_script
from centre.batch_jobs import check_name as check_name
from centre.batch_jobs import check_resources as check_resources
from centre.errors import FieldError
from centre.options import SpawnRequest
from centre.site import Site
from centre.slurm_json import ENDED_STATES, SlurmOutputError, slurm_number, slurm_state
from centre.slurm_json import slurm_jobs as decode_jobs
from centre.slurm_sstat import JobNow
from voila_apps.kit import APPS_ROOT

# A refused input: the kernel's refusal, which names the field and says what is allowed.
InputError = FieldError


def batch_script(
    request: SpawnRequest,
    *,
    name: str,
    workdir: str,
    body: str,
    tasks: int = 1,
    output: str = OUTPUT_PATTERN,
    account: str | None = None,
    reporter_python: str | None = None,
) -> str:
    """The kernel's batch script (centre/batch_jobs.py); with ``reporter_python`` (an image's
    interpreter) the job reports its use for My jobs first (:func:`reporter_lines`)."""
    return kernel_batch_script(
        request,
        name=name,
        workdir=workdir,
        body=body,
        tasks=tasks,
        output=output,
        account=account,
        preamble=reporter_lines(reporter_python) if reporter_python else "",
    )


def reporter_lines(python: str) -> str:
    """Shell lines that start the job's reporter (voila_apps/kit/job_reporter.py) when the
    job has a key to report with, and stop it, with a last report, when the script ends.

    Its output goes nowhere: the job's output is the person's.  An ``exit`` keeps its code:
    bash leaves the status alone after an EXIT trap."""
    command = f"PYTHONPATH={shlex.quote(str(APPS_ROOT))} {shlex.quote(python)} -m voila_apps.kit.job_reporter"
    return (
        "# corehour: this job's use, minute by minute, for My jobs; it stops with the job.\n"
        'if [ -n "${COREHOUR_USAGE_KEY:-}" ]; then\n'
        f"    {command} </dev/null >/dev/null 2>&1 &\n"
        "    corehour_reporter=$!\n"
        '    trap \'kill -TERM "$corehour_reporter" 2>/dev/null; wait "$corehour_reporter"\' EXIT\n'
        "fi\n"
    )


def price_per_hour(site: Site, request: SpawnRequest, at: int) -> str:
    """What an hour of this job costs at the base rate, or a plain note when nothing is billed."""
    if site.billing is None:
        return "This site does not bill jobs."
    from centre.pricing import NoRateError, RateBook, Tres, format_credits, hourly_price_mc

    tres = Tres(cpus=request.cores, gpus=request.gpus, mem_mb=request.memory_gb * 1024)
    try:
        price = RateBook.from_site(site.billing).price_at(request.cluster, request.partition, at)
    except NoRateError:
        return f"No price is set for {request.cluster}/{request.partition}."
    per_hour = hourly_price_mc(price, tres, Decimal(1))
    most = per_hour * request.walltime_minutes // 60
    return (
        f"{format_credits(per_hour)} {site.billing.currency} per hour at the standard rate; "
        f"at most {format_credits(most)} for the full {request.walltime_minutes} minutes."
    )


@dataclass(frozen=True)
class JobState:
    state: str  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ... or UNKNOWN
    reason: str = ""
    elapsed_seconds: int = 0
    exit_code: int | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    def describe(self) -> str:
        words = {
            "PENDING": "Queued",
            "CONFIGURING": "Starting",
            "RUNNING": "Running",
            "COMPLETING": "Finishing",
            "COMPLETED": "Finished",
            "FAILED": "Failed",
            "CANCELLED": "Cancelled",
            "TIMEOUT": "Ran out of time",
            "OUT_OF_MEMORY": "Ran out of memory",
            "NODE_FAIL": "Lost its node",
            "UNKNOWN": "Waiting for Slurm",
        }
        text = words.get(self.state, self.state.title())
        if self.state == "PENDING" and self.reason and self.reason != "None":
            text += f" ({self.reason})"
        if self.elapsed_seconds:
            minutes, seconds = divmod(self.elapsed_seconds, 60)
            text += f", {minutes} min {seconds:02d} s"
        if self.state == "FAILED" and self.exit_code:
            text += f", exit code {self.exit_code}"
        return text


def use_in_words(use: JobNow | None, cores: int, gpus: int, elapsed_seconds: int) -> str:
    """A running batch job's use for its panel: its CPU on average so far against its cores
    (Slurm reads a job's processes every half minute or so, so an average is what is true),
    and its memory at the last reading."""
    if use is None or elapsed_seconds <= 0 or (use.cpu_seconds == 0 and use.memory_bytes == 0):
        return "Use: not measured yet (Slurm reads a running job's use every 30 s or so)"
    average = min(use.cpu_seconds / elapsed_seconds, cores)
    text = (
        f"Use: CPU {average:.2f} of {cores} core{'s' if cores != 1 else ''} on average"
        f" · Mem {use.memory_bytes / 1024**3:.2f} GiB now"
    )
    if gpus:
        text += " · GPU use: on My jobs (read each minute from the GPU driver)"
    return text


def job_state(squeue_text: str, sacct_text: str, job_id: str, now: int) -> JobState:
    """One job's state: squeue while Slurm holds it, then sacct (the accounting record)."""
    for job in slurm_jobs(squeue_text, "squeue"):
        if str(slurm_number(job.get("job_id"))) == job_id:
            start = slurm_number(job.get("start_time")) or 0
            state = slurm_state(job.get("job_state"))
            running = state == "RUNNING" and 0 < start < 0xFFFFFFFE
            return JobState(
                state, str(job.get("state_reason") or ""), max(0, now - start) if running else 0
            )
    for job in slurm_jobs(sacct_text, "sacct"):
        if str(slurm_number(job.get("job_id"))) == job_id:
            times = job.get("time") or {}
            exit_code = (job.get("exit_code") or {}).get("return_code")
            return JobState(
                slurm_state((job.get("state") or {}).get("current")),
                str((job.get("state") or {}).get("reason") or ""),
                slurm_number(times.get("elapsed")) or 0,
                slurm_number(exit_code),
            )
    return JobState("UNKNOWN")


def download_url(service_prefix: str, home: str, path: str) -> str:
    """The person's own server serves files under their home at ``<prefix>files/``."""
    return f"{service_prefix.rstrip('/')}/files/{quote(_in_home(home, path))}?download=1"


def viewer_url(service_prefix: str, home: str, path: str) -> str:
    """The results viewer (voila_apps/viewer), in the same server, opening ``path``."""
    return f"{service_prefix.rstrip('/')}/viewer/?path={quote(_in_home(home, path), safe='/')}"


def _in_home(home: str, path: str) -> str:
    relative = path.removeprefix(home.rstrip("/") + "/")
    if relative == path or ".." in relative.split("/"):
        raise InputError("path", f"{path} is not under {home}")
    return relative


def slurm_jobs(text: str, command: str) -> list[Mapping]:
    """The jobs of squeue or sacct JSON (centre's one decoder); nothing for output that is
    not such JSON, so a view shows no jobs rather than failing."""
    try:
        return decode_jobs(text, command)
    except SlurmOutputError:
        return []
