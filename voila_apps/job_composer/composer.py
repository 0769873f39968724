"""Job Composer, the pure part: templates, checking a submission, the batch script, "My jobs".

The app's notebook draws the widgets and runs sbatch/squeue/sacct as the person; every
decision lives here, so it is tested without a browser.  Resources go through the same
allow-list as notebook servers (``spawners.options``): a profile, a cluster and numbers
within the profile's limits.  The script body is the person's own; it runs as them, after
corehour's ``#SBATCH`` lines (sbatch ignores directives after the first command, so a
body cannot raise its own limits).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from spawners.options import OptionError, SpawnRequest, validate_user_options
from spawners.site_config import Site
from spawners.slurm_json import ENDED_STATES, _number, _state

MAX_SCRIPT_BYTES = 64 * 1024
MAX_TASKS = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
_ACCOUNT = re.compile(r"[a-z][a-z0-9_-]{0,62}")


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


class ComposerError(ValueError):
    """A refused submission; ``field`` names the input, the message says what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Submission:
    name: str
    request: SpawnRequest
    tasks: int
    script: str


def check_submission(raw: Mapping[str, object], site: Site) -> Submission:
    """Check everything the form sent; nothing is submitted unless this returns."""
    name = raw.get("name", "job")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ComposerError(
            "name", "use 1–40 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    options = {
        k: raw[k]
        for k in ("profile", "cluster", "cores", "memory_gb", "gpus", "walltime_hours")
        if k in raw
    }
    if options.get("cluster") == "auto":
        raise ComposerError("cluster", "choose a cluster for a batch job")
    try:
        request = validate_user_options(options, site)
    except OptionError as e:
        raise ComposerError(e.field, str(e).split(": ", 1)[1]) from None
    if request.cluster == "auto":
        raise ComposerError("cluster", f"choose one of {', '.join(request.candidate_clusters)}")
    tasks = raw.get("tasks", 1)
    if isinstance(tasks, bool) or not isinstance(tasks, int) or not 1 <= tasks <= MAX_TASKS:
        raise ComposerError("tasks", f"a whole number from 1 to {MAX_TASKS}")
    script = raw.get("script", "")
    if not isinstance(script, str) or not script.strip():
        raise ComposerError("script", "write a script or start from a template")
    if "\x00" in script:
        raise ComposerError("script", "must be text")
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        raise ComposerError("script", f"at most {MAX_SCRIPT_BYTES // 1024} KB")
    return Submission(name=name, request=request, tasks=tasks, script=script)


def render(submission: Submission, workdir: str, account: str | None = None) -> str:
    """The batch script: corehour's directives from checked values, then the person's body."""
    if not _PATH.fullmatch(workdir):
        raise ComposerError("workdir", f"{workdir!r} is not a plain absolute path")
    if account is not None and not _ACCOUNT.fullmatch(account):
        raise ComposerError("account", f"{account!r} is not an account name")
    r = submission.request
    directives = [
        f"--job-name={submission.name}",
        f"--partition={r.partition}",
        "--nodes=1",
        f"--ntasks={submission.tasks}",
        f"--cpus-per-task={r.cores}",
        f"--mem={r.memory_gb}G",
        f"--time={r.walltime_minutes}",
        f"--chdir={workdir}",
        "--output=%x-%j.out",
    ]
    if r.gpus:
        directives.append(f"--gres=gpu:{r.gpus}")
    if account:
        directives.append(f"--account={account}")
    body = submission.script if submission.script.endswith("\n") else submission.script + "\n"
    header = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives)]
    return "\n".join(header) + "\n# --- your script ---\n" + body


@dataclass(frozen=True)
class JobRow:
    cluster: str
    job_id: str
    name: str
    state: str
    partition: str
    elapsed_seconds: int
    reason: str

    @property
    def active(self) -> bool:
        return self.state not in ENDED_STATES


def my_jobs(
    squeue_by_cluster: Mapping[str, str], sacct_by_cluster: Mapping[str, str], now: int
) -> list[JobRow]:
    """Jobs across clusters, newest first: live ones from squeue, finished ones from sacct."""
    rows: dict[tuple[str, str], JobRow] = {}
    for cluster, text in sacct_by_cluster.items():
        for job in _jobs(text):
            times = job.get("time") or {}
            start, end = _n(times.get("start")), _n(times.get("end"))
            elapsed = _n(times.get("elapsed")) or (max(0, end - start) if start and end else 0)
            state = _state((job.get("state") or {}).get("current"))
            rows[(cluster, str(_n(job.get("job_id"))))] = JobRow(
                cluster,
                str(_n(job.get("job_id"))),
                str(job.get("name") or ""),
                state,
                str(job.get("partition") or ""),
                elapsed,
                str((job.get("state") or {}).get("reason") or ""),
            )
    for cluster, text in squeue_by_cluster.items():
        for job in _jobs(text):
            start = _n(job.get("start_time"))
            state = _state(job.get("job_state"))
            running = state == "RUNNING" and 0 < start < 0xFFFFFFFE
            rows[(cluster, str(_n(job.get("job_id"))))] = JobRow(
                cluster,
                str(_n(job.get("job_id"))),
                str(job.get("name") or ""),
                state,
                str(job.get("partition") or ""),
                max(0, now - start) if running else 0,
                str(job.get("state_reason") or ""),
            )
    return sorted(rows.values(), key=lambda row: (row.cluster, -int(row.job_id or 0)))


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _jobs(text: str) -> list[Mapping]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    jobs = data.get("jobs") if isinstance(data, dict) else None
    return [j for j in jobs if isinstance(j, Mapping)] if isinstance(jobs, list) else []


def _n(value: object) -> int:
    return _number(value) or 0
