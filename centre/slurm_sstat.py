"""What running jobs use now, from one ``sstat`` for many jobs.

``sstat`` asks each job's node for its steps' accounting (what ``jobacct_gather`` last read),
so one call covers every running job of a cluster: ``sstat_argv`` builds it, ``parse_sstat``
sums each job's steps.  Slurm 22.05 has no ``sstat --json``; the parsable text is the same
on every version since.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

FIELDS = "JobID,TRESUsageInTot"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)([KMGT]?)")
_JOB_ID = re.compile(r"\d+(?:_\d+)?")


@dataclass(frozen=True)
class JobNow:
    """A running job's use so far: CPU seconds of all its steps, and their memory now."""

    cpu_seconds: float
    memory_bytes: int


def sstat_argv(job_ids: Iterable[str]) -> list[str]:
    """One sstat for all of these jobs, every step of each (``--allsteps``)."""
    ids = [job_id for job_id in job_ids if _JOB_ID.fullmatch(job_id)]
    if not ids:
        raise ValueError("sstat needs at least one job id")
    return [
        "sstat",
        "--allsteps",
        "--parsable2",
        "--noheader",
        f"--format={FIELDS}",
        "-j",
        ",".join(ids),
    ]


def parse_sstat(text: str) -> dict[str, JobNow]:
    """Each job's steps summed, from ``sstat -P -n --format=JobID,TRESUsageInTot`` lines."""
    totals: dict[str, list[float]] = {}
    for line in text.splitlines():
        step, _, tres = line.partition("|")
        job_id = step.split(".", 1)[0].strip()
        if not _JOB_ID.fullmatch(job_id):
            continue
        usage = dict(part.split("=", 1) for part in tres.strip().split(",") if "=" in part)
        total = totals.setdefault(job_id, [0.0, 0])
        total[0] += cpu_seconds(usage.get("cpu", "0"))
        total[1] += size_bytes(usage.get("mem", "0"))
    return {job_id: JobNow(round(cpu, 3), int(memory)) for job_id, (cpu, memory) in totals.items()}


def cpu_seconds(text: str) -> float:
    """Slurm's CPU time: [D-][HH:]MM:SS[.mmm]."""
    days, _, clock = text.strip().rpartition("-")
    seconds = 0.0
    try:
        for part in clock.split(":"):
            seconds = seconds * 60 + float(part)
        return seconds + 86400 * int(days or 0)
    except ValueError:
        return 0.0


def size_bytes(text: str) -> int:
    """Slurm's sizes: plain bytes or K, M, G, T (binary)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        return 0
    return int(float(match.group(1)) * _UNITS[match.group(2)])
