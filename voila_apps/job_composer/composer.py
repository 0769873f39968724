"""Job Composer, the pure part: templates, checking a submission, the batch script, "My jobs".

The app's notebook draws the widgets and runs sbatch/squeue/sacct as the person; every
decision lives here, so it is tested without a browser.  Resources go through the same
allow-list as notebook servers (``centre.options``): a profile, a cluster and numbers
within the profile's limits.  The script body is the person's own; it runs as them, after
corehour's ``#SBATCH`` lines (sbatch ignores directives after the first command, so a
body cannot raise its own limits).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from centre.batch_jobs import MAX_SCRIPT_BYTES as MAX_SCRIPT_BYTES
from centre.batch_jobs import MAX_TASKS as MAX_TASKS
from centre.batch_jobs import BatchJob, check_batch_job, render_batch_job
from centre.errors import FieldError
from centre.site import Site
from centre.slurm_json import ENDED_STATES, alloc_counts, slurm_number, slurm_state
from voila_apps.kit.jobs import reporter_lines, slurm_jobs


@dataclass(frozen=True)
class Template:
    title: str
    body: str
    tasks: int = 1


TEMPLATES = {
    "shell": Template(
        "Shell script",
        'echo "Hello from $(hostname), job ${SLURM_JOB_ID}, ${SLURM_CPUS_PER_TASK} cores"\n'
        "date\n"
        "sleep 5\n"
        'echo "done"\n',
    ),
    "python": Template(
        "Python",
        "python3 - <<'PY'\n"
        "import os, platform\n"
        "print('Hello from', platform.node(), 'job', os.environ.get('SLURM_JOB_ID'))\n"
        "print('sum of squares:', sum(i * i for i in range(10_000_000)))\n"
        "PY\n",
    ),
    "tasks": Template(
        "Multi-task hello (srun, MPI-style ranks)",
        "srun bash -c 'echo \"rank ${SLURM_PROCID} of ${SLURM_NTASKS} on $(hostname)\"'\n",
        tasks=4,
    ),
    "threads": Template(
        "Multi-thread hello",
        "python3 - <<'PY'\n"
        "import os, threading\n"
        "n = int(os.environ.get('SLURM_CPUS_PER_TASK', '1'))\n"
        "def hello(i): print(f'thread {i} of {n}', flush=True)\n"
        "threads = [threading.Thread(target=hello, args=(i,)) for i in range(n)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "PY\n",
    ),
}


# Job Composer's refusals are the kernel's: one error type names the field in every app.
ComposerError = FieldError
# A submission is the kernel's batch job: the public API checks the same.
Submission = BatchJob


def check_submission(raw: Mapping[str, object], site: Site) -> Submission:
    """Check everything the form sent; nothing is submitted unless this returns."""
    return check_batch_job(raw, site)


def render(
    submission: Submission,
    workdir: str,
    account: str | None = None,
    reporter_python: str | None = None,
) -> str:
    """The batch script: corehour's directives from checked values, the job's reporter for My
    jobs when ``reporter_python`` is given, then the person's body."""
    preamble = reporter_lines(reporter_python) if reporter_python else ""
    return render_batch_job(submission, workdir, account, preamble)


@dataclass(frozen=True)
class JobRow:
    cluster: str
    job_id: str
    name: str
    state: str
    partition: str
    elapsed_seconds: int
    reason: str
    cpus: int = 0
    gpus: int = 0
    mem_mb: int = 0

    @property
    def active(self) -> bool:
        return self.state not in ENDED_STATES


def my_jobs(
    squeue_by_cluster: Mapping[str, str], sacct_by_cluster: Mapping[str, str], now: int
) -> list[JobRow]:
    """Jobs across clusters, newest first: live ones from squeue, finished ones from sacct."""
    rows: dict[tuple[str, str], JobRow] = {}
    for cluster, text in sacct_by_cluster.items():
        for job in slurm_jobs(text, "sacct"):
            times = job.get("time") or {}
            start, end = _n(times.get("start")), _n(times.get("end"))
            elapsed = _n(times.get("elapsed")) or (max(0, end - start) if start and end else 0)
            state = job.get("state") or {}
            current = slurm_state(state.get("current"))
            row = _row(cluster, job, current, elapsed, state.get("reason"), _sacct_tres(job))
            rows[(cluster, row.job_id)] = row
    for cluster, text in squeue_by_cluster.items():
        for job in slurm_jobs(text, "squeue"):
            start = _n(job.get("start_time"))
            state = slurm_state(job.get("job_state"))
            running = state == "RUNNING" and 0 < start < 0xFFFFFFFE
            elapsed = max(0, now - start) if running else 0
            tres = alloc_counts(str(job.get("tres_alloc_str") or ""))
            row = _row(cluster, job, state, elapsed, job.get("state_reason"), tres)
            rows[(cluster, row.job_id)] = row
    return sorted(rows.values(), key=lambda row: (row.cluster, -int(row.job_id or 0)))


def estimated_cost(row: JobRow, site: Site) -> str:
    """What the job has cost so far at the standard rate ('' where the site bills nothing)."""
    if site.billing is None or not row.elapsed_seconds:
        return ""
    from centre.pricing import NoRateError, RateBook, Tres, format_credits, hourly_price_mc

    try:
        price = RateBook.from_site(site.billing).price_at(
            row.cluster, row.partition, int(time.time())
        )
    except NoRateError:
        return ""
    per_hour = hourly_price_mc(price, Tres(cpus=row.cpus, gpus=row.gpus, mem_mb=row.mem_mb))
    return format_credits(per_hour * row.elapsed_seconds // 3600)


def _row(
    cluster: str, job: Mapping, state: str, elapsed: int, reason: object, tres: tuple[int, int, int]
) -> JobRow:
    return JobRow(
        cluster,
        str(_n(job.get("job_id"))),
        str(job.get("name") or ""),
        state,
        str(job.get("partition") or ""),
        elapsed,
        str(reason or ""),
        *tres,
    )


def _sacct_tres(job: Mapping) -> tuple[int, int, int]:
    allocated = (job.get("tres") or {}).get("allocated") or []
    counts = {
        (t.get("type"), t.get("name")): _n(t.get("count"))
        for t in allocated
        if isinstance(t, Mapping)
    }
    return (
        counts.get(("cpu", None), 0),
        counts.get(("gres", "gpu"), 0),
        counts.get(("mem", None), 0),
    )


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _n(value: object) -> int:
    return slurm_number(value) or 0
