"""What a job costs: exact, pure arithmetic over Slurm's TRES and the rate book.

Money is integer milli-credits (1 credit = 1000 mc).  A job's cost up to a moment is
computed exactly (``Fraction``) from its start and rounded *once*; every charge row is the
difference of two such cumulative values.  So however the meter's cycles slice a job, its
rows add up to the rounded exact total, and no cycle can gain or lose a milli-credit.

Rows are hour buckets on the wall clock: a running job's current bucket is updated in place
each cycle and closes at the hour or at Slurm's end time, so the ledger grows by at most one
row per job per hour, however short the cycle.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

BUCKET_SECONDS = 3600
MC_PER_CREDIT = 1000
# The ledger keeps milli-credits in 64-bit integers: below 9.2 × 10¹⁵ credits.
MAX_CREDIT_DIGITS = 15


def now() -> int:
    """The current time as rates and the ledger keep it: whole seconds since the epoch."""
    return int(time.time())


@dataclass(frozen=True)
class Tres:
    """Allocated trackable resources, as Slurm reports them."""

    cpus: int
    gpus: int = 0
    mem_mb: int = 0


@dataclass(frozen=True)
class Price:
    """Credits per unit-hour."""

    core_hour: Decimal
    gpu_hour: Decimal = Decimal(0)
    gb_mem_hour: Decimal = Decimal(0)

    def mc_per_second(self, tres: Tres) -> Fraction:
        return _mc_per_second(self, tres)


@functools.lru_cache(maxsize=65536)
def _mc_per_second(price: Price, tres: Tres) -> Fraction:
    """Cached: a cycle prices thousands of jobs with a handful of (price, TRES) pairs."""
    credits_per_hour = (
        Fraction(price.core_hour) * tres.cpus
        + Fraction(price.gpu_hour) * tres.gpus
        + Fraction(price.gb_mem_hour) * Fraction(tres.mem_mb, 1024)
    )
    return credits_per_hour * MC_PER_CREDIT / BUCKET_SECONDS


@dataclass(frozen=True)
class RatePeriod:
    """A price valid on [start, end) in epoch seconds; ``end`` None is open-ended."""

    start: int
    end: int | None
    price: Price


class NoRateError(LookupError):
    """A job ran where or when the site has no price; the meter reports it, never guesses."""


class RateBook:
    """Rate periods per (cluster, partition), checked for gaps and overlaps by the site file."""

    def __init__(self, periods: dict[tuple[str, str], Sequence[RatePeriod]]):
        self._periods = {key: tuple(sorted(p, key=lambda r: r.start)) for key, p in periods.items()}

    @classmethod
    def from_site(cls, billing) -> RateBook:
        """Build from ``centre.site.Billing`` rate entries (dates are UTC midnights)."""
        periods: dict[tuple[str, str], list[RatePeriod]] = {}
        for rate in billing.rates:
            periods.setdefault((rate.cluster, rate.partition), []).append(
                RatePeriod(
                    start=_midnight(rate.valid_from),
                    end=_midnight(rate.valid_until) if rate.valid_until else None,
                    price=Price(rate.core_hour, rate.gpu_hour, rate.gb_mem_hour),
                )
            )
        return cls(periods)

    def periods(self, cluster: str, partition: str) -> tuple[RatePeriod, ...]:
        try:
            return self._periods[(cluster, partition)]
        except KeyError:
            raise NoRateError(f"no rate for {cluster}/{partition}") from None

    def price_at(self, cluster: str, partition: str, when: int) -> Price:
        for period in self.periods(cluster, partition):
            if period.start <= when and (period.end is None or when < period.end):
                return period.price
        raise NoRateError(f"no rate for {cluster}/{partition} at {_iso(when)}")

    def partitions(self) -> Iterable[tuple[str, str]]:
        return self._periods.keys()


def exact_cost_mc(
    tres: Tres, periods: Sequence[RatePeriod], start: int, end: int, multiplier: Decimal
) -> Fraction:
    """Unrounded cost of running ``tres`` on [start, end), split at rate changes."""
    if end <= start:
        return Fraction(0)
    total = Fraction(0)
    covered = 0
    for period in periods:
        lo = max(start, period.start)
        hi = end if period.end is None else min(end, period.end)
        if hi > lo:
            total += _rate(period.price, tres, multiplier) * (hi - lo)
            covered += hi - lo
    if covered != end - start:
        raise NoRateError(f"no rate covers all of {_iso(start)} to {_iso(end)}")
    return total


@functools.lru_cache(maxsize=65536)
def _rate(price: Price, tres: Tres, multiplier: Decimal) -> Fraction:
    return price.mc_per_second(tres) * Fraction(multiplier)


def round_mc(value: Fraction) -> int:
    """Half up (away from zero) to whole milli-credits, the one rounding step in the ledger.

    Integer arithmetic: exact for any size, where a Decimal quotient would be rounded to
    the context's 28 digits first.
    """
    whole, remainder = divmod(abs(value.numerator), value.denominator)
    if 2 * remainder >= value.denominator:
        whole += 1
    return whole if value.numerator >= 0 else -whole


@dataclass(frozen=True)
class JobCost:
    """Everything needed to price one job; ``start`` is Slurm's start time."""

    cluster: str
    job_id: str
    start: int
    tres: Tres
    periods: tuple[RatePeriod, ...]
    multiplier: Decimal = Decimal(1)

    def cumulative_mc(self, until: int) -> int:
        return round_mc(exact_cost_mc(self.tres, self.periods, self.start, until, self.multiplier))

    def key(self, bucket_start: int) -> str:
        return f"{self.cluster}:{self.job_id}:{self.start}:{bucket_start}"


@dataclass(frozen=True)
class ChargeSlice:
    """One ledger row's worth: the part of a job inside one hour bucket."""

    key: str
    interval_start: int
    interval_end: int
    amount_mc: int
    cpu_seconds: int
    gpu_seconds: int
    mem_mb_seconds: int
    closed: bool


def bucket_of(moment: int) -> int:
    return moment - moment % BUCKET_SECONDS


def slices(job: JobCost, charged_from: int, until: int, ended: bool) -> list[ChargeSlice]:
    """The rows covering [charged_from, until), one per hour bucket.

    ``charged_from`` is where the job's open row starts (its start on the first cycle), so
    the first slice replaces that row.  ``until`` is the billable end so far: now for a
    running job, Slurm's end minus suspended time for a finished one.  When a finished job's
    billable end falls before ``charged_from`` (suspension only known at the end), one row
    carries the negative correction so the total stays exact.
    """
    if until <= charged_from:
        return [_slice(job, charged_from, charged_from, until, closed=ended)]
    rows = []
    lo = charged_from
    while lo < until:
        bucket_end = bucket_of(lo) + BUCKET_SECONDS
        hi = min(until, bucket_end)
        rows.append(_slice(job, lo, hi, hi, closed=hi == bucket_end or ended))
        lo = hi
    return rows


def _slice(job: JobCost, lo: int, hi: int, billed_until: int, closed: bool) -> ChargeSlice:
    seconds = billed_until - lo
    return ChargeSlice(
        key=job.key(bucket_of(lo)),
        interval_start=lo,
        interval_end=hi,
        amount_mc=job.cumulative_mc(billed_until) - job.cumulative_mc(lo),
        cpu_seconds=job.tres.cpus * seconds,
        gpu_seconds=job.tres.gpus * seconds,
        mem_mb_seconds=job.tres.mem_mb * seconds,
        closed=closed,
    )


def hourly_price_mc(price: Price, tres: Tres, multiplier: Decimal = Decimal(1)) -> int:
    """What one hour of ``tres`` costs, for quotes in the spawn form and refusals."""
    return round_mc(price.mc_per_second(tres) * BUCKET_SECONDS * Fraction(multiplier))


def format_credits(mc: int) -> str:
    """``12345`` → ``'12.345'``; exact, for people and CSV files."""
    sign = "-" if mc < 0 else ""
    whole, milli = divmod(abs(mc), MC_PER_CREDIT)
    return f"{sign}{whole}.{milli:03d}"


def parse_credits(text: str) -> int:
    """``'12.5'`` → ``12500`` milli-credits; raises ValueError on anything else."""
    try:
        value = Decimal(text.strip())
    except Exception:
        raise ValueError(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise ValueError(f"'{text}' is not a finite number")
    if value.adjusted() >= MAX_CREDIT_DIGITS:  # '1e500000' is short, but int() of it takes seconds
        raise ValueError(
            f"'{text[:40]}' is too large: at most {MAX_CREDIT_DIGITS} digits before the point"
        )
    scaled = value * MC_PER_CREDIT
    if scaled != scaled.to_integral_value():
        raise ValueError(f"'{text}' has more than 3 decimal places")
    return int(scaled)


def _midnight(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _iso(moment: int) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
