"""A cluster's last day for the admins' overview: how much of it was in use, and which accounts
spent most and left most idle.  Pure: built from ``sacct --json`` (with steps) of the day.

Spend is at the site's list rates (the rate book), for the part of each job inside the day;
an account's own multiplier is the billing service's business and is not applied here.  Waste
is the cost of the idle part of each job that ended in the day (efficiency.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from centre.pricing import NoRateError, RateBook, Tres, round_mc

from .efficiency import JobUse, efficiency

DAY = 86_400
TOP = 5


@dataclass
class LastDay:
    cluster: str
    use_percent: float = 0.0
    jobs: int = 0
    top_spend: list[tuple[str, int]] = field(default_factory=list)  # (account, milli-credits)
    top_waste: list[tuple[str, int]] = field(default_factory=list)
    error: str = ""


def last_day(cluster: str, uses: Iterable[JobUse], cpus: int, rates: RateBook, now: int) -> LastDay:
    """``cpus``: the cluster's cores now (sinfo), the day's capacity being cpus × 24 h."""
    since = now - DAY
    core_seconds = 0
    spend: Counter[str] = Counter()
    waste: Counter[str] = Counter()
    jobs = 0
    for use in uses:
        if use.start is None:
            continue
        end = use.end if use.end else now
        inside = min(end, now) - max(use.start, since)
        if inside <= 0:
            continue
        jobs += 1
        core_seconds += use.cores * inside
        try:
            price = rates.price_at(use.cluster, use.partition, use.start)
        except NoRateError:
            continue
        rate = price.mc_per_second(Tres(use.cores, use.gpus, use.memory_mb))
        spend[use.account] += round_mc(rate * inside)
        result = efficiency(use, rates)
        if result is not None and result.waste_mc and use.end and use.end >= since:
            waste[use.account] += result.waste_mc
    capacity = cpus * DAY
    return LastDay(
        cluster=cluster,
        use_percent=round(100 * float(Fraction(core_seconds, capacity)), 1) if capacity else 0.0,
        jobs=jobs,
        top_spend=spend.most_common(TOP),
        top_waste=[(account, mc) for account, mc in waste.most_common(TOP) if mc > 0],
    )
