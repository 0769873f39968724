"""Render the Slurm batch script for a notebook server.

A pure function of checked values.  It re-checks each value's shape anyway, so
that no future caller can smuggle user text into an ``#SBATCH`` line or the
shell: names must be slugs, numbers must be positive integers, and the command
is quoted word by word.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from centre.names import ACCOUNT_NAME

_SLUG = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_JOB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PATH = re.compile(r"/[A-Za-z0-9._/%+-]*")


@dataclass(frozen=True)
class JobSpec:
    job_name: str
    partition: str
    cores: int
    memory_gb: int
    gpus: int
    walltime_minutes: int
    workdir: str
    output: str
    command: Sequence[str]
    path_prefix: str | None = None  # the image's bin folder, first on PATH in the job
    # corehour's app code for app servers; set here because sudo drops PYTHONPATH on the way
    python_path: str | None = None
    account: str | None = None


def _check(spec: JobSpec) -> None:
    if not _JOB_NAME.fullmatch(spec.job_name):
        raise ValueError(f"job_name {spec.job_name!r} is not a safe job name")
    if not _SLUG.fullmatch(spec.partition):
        raise ValueError(f"partition {spec.partition!r} is not a slug")
    if spec.account and not ACCOUNT_NAME.fullmatch(spec.account):
        raise ValueError(f"account {spec.account!r} is not an account name")
    for field in ("cores", "memory_gb", "walltime_minutes"):
        value = getattr(spec, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{field} must be a positive integer, got {value!r}")
    if isinstance(spec.gpus, bool) or not isinstance(spec.gpus, int) or spec.gpus < 0:
        raise ValueError(f"gpus must be a non-negative integer, got {spec.gpus!r}")
    optional = tuple(f for f in ("path_prefix", "python_path") if getattr(spec, f))
    for field in ("workdir", "output", *optional):
        if not _PATH.fullmatch(getattr(spec, field)):
            raise ValueError(f"{field} {getattr(spec, field)!r} is not a safe absolute path")
    if not spec.command:
        raise ValueError("command is empty")


def render_batch_script(spec: JobSpec) -> str:
    """Return the batch script text for ``spec``."""
    _check(spec)
    directives = [
        f"--job-name={spec.job_name}",
        f"--partition={spec.partition}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={spec.cores}",
        f"--mem={spec.memory_gb}G",
        f"--time={spec.walltime_minutes}",
        f"--chdir={spec.workdir}",
        f"--output={spec.output}",
    ]
    if spec.gpus:
        directives.append(f"--gres=gpu:{spec.gpus}")
    if spec.account:
        directives.append(f"--account={spec.account}")
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), ""]
    lines += [
        "# The server runs as the batch step itself: no srun, so nothing re-resolves PATH.",
        'echo "corehour: notebook server starting on $(hostname) in job ${SLURM_JOB_ID}"',
        *([f"export PATH={shlex.quote(spec.path_prefix)}:$PATH"] if spec.path_prefix else []),
        *([f"export PYTHONPATH={shlex.quote(spec.python_path)}"] if spec.python_path else []),
        f"exec {shlex.join(spec.command)}",
        "",
    ]
    return "\n".join(lines)
