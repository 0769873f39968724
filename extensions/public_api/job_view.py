"""One batch job as the public API shows it, from Slurm's JSON: pure, so tested without Slurm.

squeue knows a job while Slurm holds it (and for a few minutes after it ends); sacct, the
accounting record, knows it from its submission on.  The API reads squeue first, from the
hub's shared status board, and sacct only for a job squeue no longer shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from centre.slurm_json import (
    ENDED_STATES,
    JobInfo,
    alloc_counts,
    slurm_number,
    slurm_state,
    slurm_text,
)
from centre.slurm_output import output_path

NO_TIME = 0xFFFFFFFE  # Slurm's "not set" for a time, past which nothing is a real moment


@dataclass(frozen=True)
class JobView:
    cluster: str
    job_id: str
    name: str
    user: str
    partition: str
    state: str
    reason: str = ""
    submitted: int | None = None
    start: int | None = None  # the start, or for a queued job Slurm's expected start
    end: int | None = None
    elapsed_s: int = 0
    exit_code: int | None = None
    queue_position: int | None = None
    output: str = ""  # the output file's path on the cluster, "" when Slurm does not say
    cores: int = 0
    gpus: int = 0
    memory_mb: int = 0

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    def to_json(self) -> dict:
        return {**asdict(self), "ended": self.ended}


def _moment(value: object) -> int | None:
    number = slurm_number(value)
    return number if number and 0 < number < NO_TIME else None


def from_queue(cluster: str, job: JobInfo, now: int, position: int | None) -> JobView:
    """A job Slurm still holds, from the hub's shared ``squeue`` answer."""
    running = job.running and job.start_time is not None
    cores, gpus, memory_mb = alloc_counts(job.tres_alloc)
    return JobView(
        cluster=cluster,
        job_id=job.job_id,
        name=job.name,
        user=job.user,
        partition=job.partition,
        state=job.state,
        reason="" if job.reason == "None" else job.reason,
        submitted=_moment(job.submit_time),
        start=_moment(job.start_time),
        elapsed_s=max(0, now - job.start_time) if running else 0,
        queue_position=position,
        output=output_path(job.output, job.workdir, job.job_id, job.name, job.user),
        cores=cores,
        gpus=gpus,
        memory_mb=memory_mb,
    )


def from_sacct(cluster: str, raw: Mapping[str, object], now: int) -> JobView:
    job_id = str(slurm_number(raw.get("job_id")))
    name, user = slurm_text(raw.get("name")), slurm_text(raw.get("user"))
    state_block = raw.get("state") if isinstance(raw.get("state"), Mapping) else {}
    times = raw.get("time") if isinstance(raw.get("time"), Mapping) else {}
    state = slurm_state(state_block.get("current"))
    start, end = _moment(times.get("start")), _moment(times.get("end"))
    elapsed = slurm_number(times.get("elapsed")) or 0
    if state == "RUNNING" and start:
        elapsed = max(elapsed, now - start)
    exit_block = raw.get("exit_code") if isinstance(raw.get("exit_code"), Mapping) else {}
    allocated = (
        (raw.get("tres") or {}).get("allocated") if isinstance(raw.get("tres"), Mapping) else []
    )
    counts = {
        (t.get("type"), t.get("name")): slurm_number(t.get("count")) or 0
        for t in allocated or ()
        if isinstance(t, Mapping)
    }
    workdir = slurm_text(raw.get("working_directory"))
    return JobView(
        cluster=cluster,
        job_id=job_id,
        name=name,
        user=user,
        partition=slurm_text(raw.get("partition")),
        state=state,
        reason=slurm_text(state_block.get("reason")),
        submitted=_moment(times.get("submission")),
        start=start,
        end=end if state in ENDED_STATES else None,
        elapsed_s=elapsed,
        exit_code=slurm_number(exit_block.get("return_code")) if state in ENDED_STATES else None,
        output=output_path("%x-%j.out", workdir, job_id, name, user) if workdir else "",
        cores=counts.get(("cpu", None), 0),
        gpus=counts.get(("gres", "gpu"), 0),
        memory_mb=counts.get(("mem", None), 0),
    )


def find_accounted(cluster: str, jobs: list[dict], job_id: str, now: int) -> JobView | None:
    """The record of ``job_id`` among sacct's ``jobs`` (which can print other clusters' jobs
    of the same number: only this cluster's count)."""
    for raw in jobs:
        if str(slurm_number(raw.get("job_id"))) != job_id:
            continue
        if raw.get("cluster") not in (None, "", cluster):
            continue
        return from_sacct(cluster, raw, now)
    return None
