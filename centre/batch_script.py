"""Render Slurm batch scripts: the one renderer of ``#SBATCH`` lines in corehour.

Notebook servers (:func:`render_batch_script`) and the apps' batch jobs
(:func:`render_header` plus their body, voila_apps/kit/jobs.py) both go through it.  A pure
function of checked values.  It re-checks each value's shape anyway, so that no future
caller can smuggle user text into an ``#SBATCH`` line or the shell: names must be slugs,
numbers must be positive integers, paths are plain, and a command is quoted word by word.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from centre.errors import FieldError
from centre.names import ACCOUNT_NAME
from centre.options import SpawnRequest

_SLUG = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_JOB_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
# Slurm's output file: absolute, or relative to the working directory (%x-%j.out).
_OUTPUT = re.compile(r"[A-Za-z0-9._/%+][A-Za-z0-9._/%+-]*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# What a job that brings its own environment starts from: nothing of the submitting shell.
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
# The hub's variables a server's job needs; the sudo rule (deploy/sudoers/corehour.in) keeps
# the same ones for a local job.  Anything else of the hub's environment stays behind.
JOB_VARIABLES = re.compile(
    r"JUPYTERHUB_[A-Z0-9_]+|JPY_API_TOKEN|COREHOUR_SITE_JSON|COREHOUR_USAGE_KEYS?|SLURM_CONF"
)


def job_environment(hub_env: Mapping[str, str], slurm_conf: str | None) -> dict[str, str]:
    """The variables a server's job on a remote cluster gets in its script body."""
    environment = {k: v for k, v in hub_env.items() if JOB_VARIABLES.fullmatch(k)}
    if slurm_conf:
        environment["SLURM_CONF"] = slurm_conf
    return environment


def request_fields(request: SpawnRequest) -> dict[str, object]:
    """The header fields a checked spawn request decides."""
    return {
        "partition": request.partition,
        "cores": request.cores,
        "memory_gb": request.memory_gb,
        "gpus": request.gpus,
        "walltime_minutes": request.walltime_minutes,
    }


@dataclass(frozen=True, kw_only=True)
class JobHeader:
    job_name: str
    partition: str
    cores: int
    memory_gb: int
    gpus: int
    walltime_minutes: int
    workdir: str
    output: str
    tasks: int = 1
    account: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobSpec(JobHeader):
    """A notebook server's job: the header, and the command that becomes the server."""

    command: Sequence[str]
    path_prefix: str | None = None  # the image's bin folder, first on PATH in the job
    # corehour's app code for app servers; set here because sudo drops PYTHONPATH on the way
    python_path: str | None = None
    # For a cluster reached over ssh, which forwards no environment: the server's variables
    # (its API token among them) go into the script body, never onto a command line, and
    # the job takes nothing from the submitting side (--export=NIL).
    environment: Mapping[str, str] = field(default_factory=dict)


def _check_header(header: JobHeader) -> None:
    if not _JOB_NAME.fullmatch(header.job_name):
        raise FieldError("job_name", f"{header.job_name!r} is not a safe job name")
    if not _SLUG.fullmatch(header.partition):
        raise FieldError("partition", f"{header.partition!r} is not a slug")
    if header.account and not ACCOUNT_NAME.fullmatch(header.account):
        raise FieldError("account", f"{header.account!r} is not an account name")
    for name in ("cores", "memory_gb", "walltime_minutes", "tasks"):
        value = getattr(header, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FieldError(name, f"must be a positive integer, got {value!r}")
    if isinstance(header.gpus, bool) or not isinstance(header.gpus, int) or header.gpus < 0:
        raise FieldError("gpus", f"must be a non-negative integer, got {header.gpus!r}")
    if not _PATH.fullmatch(header.workdir):
        raise FieldError("workdir", f"{header.workdir!r} is not a safe absolute path")
    if not _OUTPUT.fullmatch(header.output):
        raise FieldError("output", f"{header.output!r} is not a safe path")


def render_header(header: JobHeader) -> str:
    """The shebang and the ``#SBATCH`` lines, each a single option, ending in a newline."""
    _check_header(header)
    directives = [
        f"--job-name={header.job_name}",
        f"--partition={header.partition}",
        "--nodes=1",
        f"--ntasks={header.tasks}",
        f"--cpus-per-task={header.cores}",
        f"--mem={header.memory_gb}G",
        f"--time={header.walltime_minutes}",
        f"--chdir={header.workdir}",
        f"--output={header.output}",
    ]
    if header.gpus:
        directives.append(f"--gres=gpu:{header.gpus}")
    if header.account:
        directives.append(f"--account={header.account}")
    return "\n".join(["#!/bin/bash", *(f"#SBATCH {d}" for d in directives)]) + "\n"


def environment_lines(environment: Mapping[str, str]) -> list[str]:
    """``export NAME=value`` lines, each value quoted for the shell, starting from a plain PATH."""
    for name, value in environment.items():
        if not _VARIABLE.fullmatch(name):
            raise FieldError("environment", f"{name!r} is not a variable name")
        if "\0" in value:
            raise FieldError("environment", f"the value of {name} holds a NUL byte")
    values = {"PATH": BASE_PATH, **environment}
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def render_batch_script(spec: JobSpec) -> str:
    """Return the batch script text for a notebook server's job."""
    header = render_header(spec)
    for name in ("path_prefix", "python_path"):
        value = getattr(spec, name)
        if value and not _PATH.fullmatch(value):
            raise FieldError(name, f"{value!r} is not a safe absolute path")
    if not spec.command:
        raise FieldError("command", "is empty")
    if spec.environment:
        header += "#SBATCH --export=NIL\n"
    lines = [
        "",
        *(environment_lines(spec.environment) if spec.environment else []),
        "# The server runs as the batch step itself: no srun, so nothing re-resolves PATH.",
        'echo "corehour: notebook server starting on $(hostname) in job ${SLURM_JOB_ID}"',
        *([f"export PATH={shlex.quote(spec.path_prefix)}:$PATH"] if spec.path_prefix else []),
        *([f"export PYTHONPATH={shlex.quote(spec.python_path)}"] if spec.python_path else []),
        f"exec {shlex.join(spec.command)}",
        "",
    ]
    return header + "\n".join(lines)
