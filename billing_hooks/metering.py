"""One metering cycle's decisions for one job, as pure data.

Given what Slurm says about a job and where its charging stood, ``plan_job`` returns the
charge rows to write, how far the account's balance moves, and where charging stands
afterwards.  The shell (``meter.py``) only reads Slurm, calls this, and writes the result
in one database transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing_hooks.usage import JobUsage
from centre.pricing import ChargeSlice, JobCost, RatePeriod, slices


@dataclass(frozen=True)
class Progress:
    """Where a job's charging stands; mirrors a ``MeteredJob`` row."""

    open_from: int
    open_amount_mc: int
    charged_until: int
    finished: bool = False


@dataclass(frozen=True)
class Booking:
    job: JobUsage
    rows: tuple[ChargeSlice, ...]
    delta_mc: int
    progress: Progress


def plan_job(
    job: JobUsage,
    periods: tuple[RatePeriod, ...],
    multiplier: Decimal,
    progress: Progress | None,
    now: int,
) -> Booking | None:
    """What this cycle books for ``job``; None when nothing changed."""
    if progress is not None and progress.finished:
        return None
    until = job.billable_until(now)
    if progress is not None and not job.ended:
        # A running job never goes back; a suspended one stands still until it resumes.
        until = (
            progress.charged_until
            if job.state == "SUSPENDED"
            else max(until, progress.charged_until)
        )
        if until == progress.charged_until:
            return None
    charged_from = job.start if progress is None else progress.open_from
    open_amount = 0 if progress is None else progress.open_amount_mc
    cost = JobCost(job.cluster, job.job_id, job.start, job.tres, periods, multiplier)
    rows = slices(cost, charged_from, until, ended=job.ended)
    last = rows[-1]
    if last.closed and not job.ended:
        after = Progress(last.interval_end, 0, until)
    else:
        after = Progress(last.interval_start, last.amount_mc, until, finished=job.ended)
    delta = sum(row.amount_mc for row in rows) - open_amount
    return Booking(job=job, rows=tuple(rows), delta_mc=delta, progress=after)
