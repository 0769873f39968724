"""What Slurm says ran: jobs with their allocated TRES and times, from sacct and squeue JSON.

Both Slurm 22.05 (plain values) and 23.02+ (``{"set", "number"}`` wrappers, state lists)
are read.  Only jobs that have started appear: a pending job costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from centre.pricing import Tres
from centre.slurm_json import (
    ENDED_STATES,
    SlurmOutputError,
    slurm_jobs,
    slurm_number,
    slurm_state,
    slurm_text,
)

# Slurm's "no value" sentinels (NO_VAL, INFINITE): 24.11 prints them as the start time of a
# job that never started.
_NO_VALUE = 0xFFFFFFFE
_MEM_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024, "P": 1024**3}

# A run that is over.  sacct --duplicates lists each earlier run of a requeued job as
# REQUEUED, with the end of that run; the job itself goes on under the same id as a new run.
RUN_ENDED_STATES = ENDED_STATES | {"REQUEUED"}


@dataclass(frozen=True)
class JobUsage:
    cluster: str
    job_id: str
    user: str
    account: str
    partition: str
    name: str
    state: str
    start: int
    end: int | None
    suspended: int
    tres: Tres

    @property
    def ended(self) -> bool:
        return self.end is not None

    def billable_until(self, now: int) -> int:
        """Slurm's end (or now) less suspended time, never before the start."""
        stop = self.end if self.end is not None else now
        return max(self.start, stop - self.suspended)


def parse_tres_string(text: str) -> Tres:
    """``cpu=2,mem=4G,node=1,billing=2,gres/gpu=1`` as squeue prints ``tres_alloc_str``."""
    values: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return Tres(
        cpus=_int(values.get("cpu", "0")),
        gpus=_int(values.get("gres/gpu", "0")),
        mem_mb=_mem_mb(values.get("mem", "0")),
    )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SlurmOutputError(f"TRES count '{text}' is not a number") from None


def _mem_mb(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTP]?)", text)
    if not match:
        raise SlurmOutputError(f"TRES memory '{text}' is not a size")
    return round(float(match[1]) * _MEM_UNITS[match[2] or "M"])


def _tres_list(items: object) -> Tres:
    counts: dict[str, int] = {}
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping):
            continue
        kind = slurm_text(item.get("type"))
        name = slurm_text(item.get("name"))
        count = slurm_number(item.get("count"))
        if count is None or count < 0:
            continue
        counts[f"{kind}/{name}" if name else kind] = count
    return Tres(
        cpus=counts.get("cpu", 0), gpus=counts.get("gres/gpu", 0), mem_mb=counts.get("mem", 0)
    )


def _who_and_where(raw: Mapping, cluster: str, user_field: str) -> dict[str, str]:
    """A job's id, owner, account, partition and name; sacct and squeue name the owner
    differently (``user``, ``user_name``)."""
    return {
        "cluster": cluster,
        "job_id": str(slurm_number(raw.get("job_id"))),
        "user": slurm_text(raw.get(user_field)),
        "account": slurm_text(raw.get("account")),
        "partition": slurm_text(raw.get("partition")),
        "name": slurm_text(raw.get("name")),
    }


def parse_sacct(text: str, cluster: str) -> list[JobUsage]:
    """Started jobs from ``sacct --json``; ``end`` is None while a job still runs."""
    usages = []
    for raw in slurm_jobs(text, "sacct"):
        times = raw.get("time") if isinstance(raw.get("time"), Mapping) else {}
        start = slurm_number(times.get("start")) or 0
        if not 0 < start < _NO_VALUE:
            continue  # never started: a pending job that was cancelled costs nothing
        state_info = raw.get("state") if isinstance(raw.get("state"), Mapping) else {}
        state = slurm_state(state_info.get("current"))
        end = slurm_number(times.get("end")) or 0
        ended = state in RUN_ENDED_STATES and end >= start
        tres = raw.get("tres") if isinstance(raw.get("tres"), Mapping) else {}
        allocated = _tres_list(tres.get("allocated"))
        if allocated.cpus <= 0:
            continue  # nothing was allocated, so nothing ran
        usages.append(
            JobUsage(
                **_who_and_where(raw, cluster, user_field="user"),
                state=state,
                start=start,
                end=end if ended else None,
                suspended=slurm_number(times.get("suspended")) or 0,
                tres=allocated,
            )
        )
    return usages


def parse_squeue(text: str, cluster: str) -> list[JobUsage]:
    """Running (and suspended) jobs from ``squeue --json``."""
    usages = []
    for raw in slurm_jobs(text, "squeue"):
        state = slurm_state(raw.get("job_state"))
        start = slurm_number(raw.get("start_time")) or 0
        if state not in ("RUNNING", "SUSPENDED", "COMPLETING") or not 0 < start < _NO_VALUE:
            continue
        usages.append(
            JobUsage(
                **_who_and_where(raw, cluster, user_field="user_name"),
                state=state,
                start=start,
                end=None,
                suspended=0,
                tres=parse_tres_string(slurm_text(raw.get("tres_alloc_str"))),
            )
        )
    return usages
