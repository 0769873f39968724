"""A batch job as a person asks for one: checked against the site's allow-list, then rendered.

Job Composer (voila_apps/job_composer), the apps' kit and the public API
(extensions/public_api) all check a job here, so a job costs the same limits whichever way
it is submitted.  Resources go through the notebook servers' allow-list
(:func:`centre.options.validate_user_options`): a profile, one named cluster, and sizes
within the profile's limits.  The script body is the person's own and runs as them, after
corehour's ``#SBATCH`` lines; sbatch ignores directives after the first command, so a body
cannot raise its own limits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from centre.batch_script import JobHeader, render_header, request_fields
from centre.errors import FieldError
from centre.options import OptionError, SpawnRequest, validate_user_options
from centre.site import Site

RESOURCE_KEYS = ("profile", "cluster", "cores", "memory_gb", "gpus", "walltime_hours")
JOB_KEYS = ("name", "script", "tasks", *RESOURCE_KEYS, "account")
MAX_SCRIPT_BYTES = 64 * 1024
MAX_TASKS = 64
# Where a job's output goes, in its working directory: the name and the job's id.
OUTPUT_PATTERN = "%x-%j.out"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


@dataclass(frozen=True)
class BatchJob:
    name: str
    request: SpawnRequest
    tasks: int
    script: str


def check_resources(raw: Mapping[str, object], site: Site) -> SpawnRequest:
    """Profile, cluster and sizes for a batch job, within the profile's limits."""
    options = {k: raw[k] for k in RESOURCE_KEYS if k in raw}
    if options.get("cluster") == "auto":
        raise FieldError("cluster", "choose a cluster for a batch job")
    try:
        request = validate_user_options(options, site)
    except OptionError as e:
        raise FieldError(e.field, e.reason) from None
    if request.cluster == "auto":
        raise FieldError("cluster", f"choose one of {', '.join(request.candidate_clusters)}")
    return request


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise FieldError(
            "name", "use 1–40 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_batch_job(raw: Mapping[str, object], site: Site, *, strict: bool = False) -> BatchJob:
    """Check everything a submission sent; nothing is submitted unless this returns.

    ``strict`` (the public API) also refuses keys it does not know, so a typo in a script's
    request is not silently dropped."""
    if strict:
        unknown = sorted(str(k)[:40] for k in raw if k not in JOB_KEYS)
        if unknown:
            raise FieldError(unknown[0], f"unknown field; the fields are {', '.join(JOB_KEYS)}")
    name = check_name(raw.get("name", "job"))
    request = check_resources(raw, site)
    tasks = raw.get("tasks", 1)
    if isinstance(tasks, bool) or not isinstance(tasks, int) or not 1 <= tasks <= MAX_TASKS:
        raise FieldError("tasks", f"a whole number from 1 to {MAX_TASKS}")
    script = raw.get("script", "")
    if not isinstance(script, str) or not script.strip():
        raise FieldError("script", "write a script or start from a template")
    if "\x00" in script:
        raise FieldError("script", "must be text")
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        raise FieldError("script", f"at most {MAX_SCRIPT_BYTES // 1024} KB")
    return BatchJob(name=name, request=request, tasks=tasks, script=script)


def batch_script(
    request: SpawnRequest,
    *,
    name: str,
    workdir: str,
    body: str,
    tasks: int = 1,
    output: str = OUTPUT_PATTERN,
    account: str | None = None,
    preamble: str = "",
) -> str:
    """``#SBATCH`` lines from checked values (the kernel's renderer), corehour's own
    ``preamble`` lines, then the body."""
    check_name(name)
    header = JobHeader(
        job_name=name,
        **request_fields(request),
        workdir=workdir,
        output=output,
        tasks=tasks,
        account=account,
    )
    return render_header(header) + preamble + (body if body.endswith("\n") else body + "\n")


def render_batch_job(
    job: BatchJob, workdir: str, account: str | None = None, preamble: str = ""
) -> str:
    """A checked job's script: corehour's directives, then the person's body."""
    return batch_script(
        job.request,
        name=job.name,
        workdir=workdir,
        body="# --- your script ---\n" + job.script,
        tasks=job.tasks,
        account=account,
        preamble=preamble,
    )


def output_path(workdir: str, name: str, job_id: str) -> str:
    """Where :data:`OUTPUT_PATTERN` puts a job's output."""
    return f"{workdir.rstrip('/')}/{name}-{job_id}.out"
