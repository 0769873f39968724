"""The billing service's Prometheus metrics: what each meter cycle did and what enforcement
decided, for a centre's monitoring (docs/monitoring.md).

One registry per service, not prometheus_client's global one, so that only these series are
served and tests can make as many as they like. ``record`` is called once per cycle.
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from billing_hooks.enforce import Plan
from billing_hooks.meter import CycleReport

__all__ = ["CONTENT_TYPE", "BillingMetrics"]

CYCLE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class BillingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycle_seconds = Histogram(
            "corehour_meter_cycle_seconds",
            "Seconds one meter cycle took: reading Slurm, writing the ledger, enforcing.",
            buckets=CYCLE_BUCKETS,
            registry=r,
        )
        self.cycles = Counter(
            "corehour_meter_cycles", "Meter cycles run, by outcome (ok or failed).",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.jobs_charged = Counter(
            "corehour_meter_jobs_charged", "Job charges written (a job counts once per cycle).",
            registry=r,
        )  # fmt: skip
        self.charged = Counter(
            "corehour_meter_charged_millicredits", "Milli-credits charged to accounts.", registry=r
        )
        self.errors = Counter(
            "corehour_meter_errors",
            "Problems a cycle reported: a cluster it could not read, a job it could not charge.",
            registry=r,
        )
        self.enforcement = Counter(
            "corehour_enforcement_actions",
            "Accounts enforcement stopped (exhausted) or let run again (released).",
            ["action"],
            registry=r,
        )
        self.below_warning = Gauge(
            "corehour_accounts_below_warning",
            "Accounts under a warning threshold, by the lowest threshold crossed (percent left).",
            ["threshold_percent"],
            registry=r,
        )
        self.last_cycle = Gauge(
            "corehour_meter_last_cycle_timestamp_seconds",
            "When the last meter cycle ended (Unix time): a stale value means the meter stopped.",
            registry=r,
        )
        for outcome in ("ok", "failed"):
            self.cycles.labels(outcome)
        for action in ("stopped", "released"):
            self.enforcement.labels(action)

    def record(
        self, seconds: float, report: CycleReport | None, plan: Plan | None, thresholds=()
    ) -> None:
        """One cycle: ``report`` and ``plan`` are None when it failed before them."""
        self.cycle_seconds.observe(seconds)
        self.last_cycle.set_to_current_time()
        self.cycles.labels("ok" if report is not None and plan is not None else "failed").inc()
        if report is not None:
            self.jobs_charged.inc(report.jobs_charged)
            self.charged.inc(max(0, report.charged_mc))  # a counter only grows
            self.errors.inc(len(report.errors))
        if plan is not None:
            self.enforcement.labels("stopped").inc(len(plan.exhausted))
            self.enforcement.labels("released").inc(len(plan.recovered))
            crossed = Tally(threshold for _account, threshold in plan.warnings)
            for threshold in {*thresholds, *crossed}:
                self.below_warning.labels(str(threshold)).set(crossed.get(threshold, 0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
