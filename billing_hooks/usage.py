"""What Slurm says ran: jobs with their allocated TRES and times, from sacct and squeue JSON.

Both Slurm 22.05 (plain values) and 23.02+ (``{"set", "number"}`` wrappers, state lists)
are read.  Only jobs that have started appear: a pending job costs nothing.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from centre.pricing import Tres
from centre.slurm_json import ENDED_STATES, SlurmOutputError, slurm_number, slurm_state, slurm_text

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


# Only the fields the meter reads.  Slurm prints a hundred or so per job (sacct adds every
# step): msgspec skips the rest without building Python objects for them, which makes
# decoding 5,000 jobs about seven times faster than json.loads.
class _SqueueJob(msgspec.Struct):
    job_id: Any = None
    job_state: Any = None
    user_name: Any = None
    account: Any = None
    partition: Any = None
    name: Any = None
    start_time: Any = None
    tres_alloc_str: Any = None


class _SacctJob(msgspec.Struct):
    job_id: Any = None
    user: Any = None
    account: Any = None
    partition: Any = None
    name: Any = None
    state: Any = None
    time: Any = None
    tres: Any = None


class _SqueueDocument(msgspec.Struct):
    jobs: list[_SqueueJob]
    errors: Any = None


class _SacctDocument(msgspec.Struct):
    jobs: list[_SacctJob]
    errors: Any = None


_DECODERS = {
    "squeue": msgspec.json.Decoder(_SqueueDocument),
    "sacct": msgspec.json.Decoder(_SacctDocument),
}


def _load(text: str, command: str) -> list[Mapping]:
    try:
        document = _decode(text, _DECODERS[command])
    except msgspec.MsgspecError as e:
        raise SlurmOutputError(f"{command} --json printed something unreadable: {e}") from None
    errors = [e for e in document.errors or () if not _nothing_found(e)]
    if errors:
        raise SlurmOutputError(f"{command} --json reported errors: {errors}")
    return [msgspec.structs.asdict(job) for job in document.jobs]


def _decode(text: str, decoder: msgspec.json.Decoder):
    """Decode with the cyclic garbage collector paused.

    Tens of megabytes of Slurm JSON allocate many containers; the collector would walk
    them again and again for no gain, since JSON cannot hold reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return decoder.decode(text)
    finally:
        if was_enabled:
            gc.enable()


def _nothing_found(error: object) -> bool:
    # sacct reports an empty window as an error (9003, "Nothing found"); it is no jobs.
    return isinstance(error, Mapping) and slurm_number(error.get("error_number")) == 9003


def parse_sacct(text: str, cluster: str) -> list[JobUsage]:
    """Started jobs from ``sacct --json``; ``end`` is None while a job still runs."""
    usages = []
    for raw in _load(text, "sacct"):
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
                cluster=cluster,
                job_id=str(slurm_number(raw.get("job_id"))),
                user=slurm_text(raw.get("user")),
                account=slurm_text(raw.get("account")),
                partition=slurm_text(raw.get("partition")),
                name=slurm_text(raw.get("name")),
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
    for raw in _load(text, "squeue"):
        state = slurm_state(raw.get("job_state"))
        start = slurm_number(raw.get("start_time")) or 0
        if state not in ("RUNNING", "SUSPENDED", "COMPLETING") or not 0 < start < _NO_VALUE:
            continue
        usages.append(
            JobUsage(
                cluster=cluster,
                job_id=str(slurm_number(raw.get("job_id"))),
                user=slurm_text(raw.get("user_name")),
                account=slurm_text(raw.get("account")),
                partition=slurm_text(raw.get("partition")),
                name=slurm_text(raw.get("name")),
                state=state,
                start=start,
                end=None,
                suspended=0,
                tres=parse_tres_string(slurm_text(raw.get("tres_alloc_str"))),
            )
        )
    return usages
