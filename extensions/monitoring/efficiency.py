"""How well a job used what it paid for, and what the unused part cost, from sacct's own numbers.

Pure: built from ``sacct --json`` (with steps) and the site's rate book.

* CPU efficiency is the CPU time of all the job's steps over allocated cores × elapsed time,
  the same sum seff and ``sacct -o TotalCPU`` make.
* Memory efficiency is the largest resident memory of any step over the allocation.
* The waste is what the idle part cost at the job's own rates: idle cores × hours × the
  core-hour rate, plus unused GB × hours × the memory rate.  GPUs count only where Slurm
  recorded their use; where it did not, the page says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from centre.pricing import NoRateError, RateBook, format_credits, round_mc
from centre.slurm_json import ENDED_STATES, slurm_number, slurm_state, slurm_text

MIB = 1024 * 1024


@dataclass(frozen=True)
class JobUse:
    """One job as sacct recorded it."""

    cluster: str
    job_id: str
    name: str
    partition: str
    account: str
    state: str
    start: int | None
    end: int | None
    elapsed_s: int
    cores: int
    memory_mb: int
    gpus: int
    cpu_seconds: float
    max_rss_bytes: int | None

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES


@dataclass(frozen=True)
class Efficiency:
    cpu_percent: float | None
    memory_percent: float | None
    idle_cores: float
    unused_memory_gb: float
    waste_mc: int | None  # None: the site has no rate for where or when the job ran
    gpu_note: str

    @property
    def waste_credits(self) -> str | None:
        return None if self.waste_mc is None else format_credits(self.waste_mc)


def job_use(raw: Mapping[str, object], cluster: str) -> JobUse:
    """A decoded ``sacct --json`` job (centre.slurm_json.slurm_jobs(..., "sacct-steps"))."""
    times = raw.get("time") or {}
    allocated = _tres_counts((raw.get("tres") or {}).get("allocated"))
    cpu_seconds = 0.0
    max_rss: int | None = None
    for step in raw.get("steps") or ():
        total = (step.get("time") or {}).get("total") or {}
        cpu_seconds += (slurm_number(total.get("seconds")) or 0) + (
            slurm_number(total.get("microseconds")) or 0
        ) / 1e6
        rss = _tres_counts(((step.get("tres") or {}).get("requested") or {}).get("max")).get("mem")
        if rss is not None:
            max_rss = max(max_rss or 0, rss)
    start = slurm_number(times.get("start")) or None
    end = slurm_number(times.get("end")) or None
    return JobUse(
        cluster=slurm_text(raw.get("cluster")) or cluster,
        job_id=str(slurm_number(raw.get("job_id")) or ""),
        name=slurm_text(raw.get("name")),
        partition=slurm_text(raw.get("partition")),
        account=slurm_text(raw.get("account")),
        state=_sacct_state(raw.get("state")),
        start=start,
        end=end,
        elapsed_s=slurm_number(times.get("elapsed")) or 0,
        cores=allocated.get("cpu", 0),
        memory_mb=allocated.get("mem", 0),
        gpus=allocated.get("gres/gpu", 0),
        cpu_seconds=cpu_seconds,
        max_rss_bytes=max_rss,
    )


def efficiency(use: JobUse, rates: RateBook) -> Efficiency | None:
    """The ended job's efficiency and waste; None while it runs or if it never ran."""
    if not use.ended or use.elapsed_s <= 0 or use.cores <= 0 or use.start is None:
        return None
    cpu_share = Fraction(use.cpu_seconds).limit_denominator(10**6) / (use.cores * use.elapsed_s)
    cpu_share = min(cpu_share, Fraction(1))
    idle_cores = use.cores * (1 - cpu_share)
    memory_share = None
    unused_gb = Fraction(0)
    if use.memory_mb and use.max_rss_bytes is not None:
        memory_share = min(Fraction(use.max_rss_bytes, use.memory_mb * MIB), Fraction(1))
        unused_gb = Fraction(use.memory_mb, 1024) * (1 - memory_share)
    try:
        price = rates.price_at(use.cluster, use.partition, use.start)
    except NoRateError:
        waste_mc = None
    else:
        per_hour = idle_cores * Fraction(price.core_hour) + unused_gb * Fraction(price.gb_mem_hour)
        waste_mc = round_mc(per_hour * 1000 * use.elapsed_s / 3600)
    gpu_note = (
        "GPU use not recorded: Slurm keeps no GPU utilisation for this cluster" if use.gpus else ""
    )
    return Efficiency(
        cpu_percent=round(float(cpu_share) * 100, 1),
        memory_percent=None if memory_share is None else round(float(memory_share) * 100, 1),
        idle_cores=round(float(idle_cores), 2),
        unused_memory_gb=round(float(unused_gb), 2),
        waste_mc=waste_mc,
        gpu_note=gpu_note,
    )


def waste_in_words(use: JobUse, result: Efficiency, duration_words) -> str:
    """ "1.3 of 2 cores idle for 50 s: 0.650 credits", the sentence the page shows."""
    cores = f"{_short(result.idle_cores)} of {use.cores} core{'s' if use.cores != 1 else ''} idle"
    memory = (
        f" and {_short(result.unused_memory_gb)} GB of memory unused"
        if result.unused_memory_gb >= 0.01
        else ""
    )
    cost = (
        "no rate for this partition, so no price"
        if result.waste_credits is None
        else f"{result.waste_credits} credits"
    )
    return f"{cores}{memory} for {duration_words(use.elapsed_s)}: {cost}"


def _sacct_state(value: object) -> str:
    """sacct nests the state: {"current": "COMPLETED" (or ["COMPLETED"]), "reason": ...}."""
    return slurm_state(value.get("current") if isinstance(value, Mapping) else value)


def _short(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def _tres_counts(entries: object) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping):
            continue
        kind, name = slurm_text(entry.get("type")), slurm_text(entry.get("name"))
        count = slurm_number(entry.get("count"))
        if kind and count is not None:
            counts[f"{kind}/{name}" if name else kind] = count
    return counts
