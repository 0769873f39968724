"""The billing service's Prometheus series, from what one meter cycle reported."""

from prometheus_client.parser import text_string_to_metric_families

from billing_hooks.enforce import Plan
from billing_hooks.meter import CycleReport
from billing_hooks.metrics import BillingMetrics


def samples(metrics: BillingMetrics) -> dict[tuple[str, tuple], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_cycle_adds_its_charges_errors_and_enforcement():
    metrics = BillingMetrics()
    report = CycleReport(now=0, jobs_charged=3, charged_mc=1234, errors=["gamma: sacct: down"])
    plan = Plan(exhausted=["a"], recovered=[], warnings=[("b", 10), ("c", 10), ("d", 25)])
    metrics.record(0.4, report, plan, thresholds=(10, 25, 50))
    metrics.record(0.2, CycleReport(now=1, jobs_charged=1, charged_mc=6), Plan(), (10, 25, 50))
    got = samples(metrics)
    assert got["corehour_meter_jobs_charged_total", ()] == 4
    assert got["corehour_meter_charged_millicredits_total", ()] == 1240
    assert got["corehour_meter_errors_total", ()] == 1
    assert got["corehour_meter_cycles_total", (("outcome", "ok"),)] == 2
    assert got["corehour_meter_cycles_total", (("outcome", "failed"),)] == 0
    assert got["corehour_meter_cycle_seconds_count", ()] == 2
    assert abs(got["corehour_meter_cycle_seconds_sum", ()] - 0.6) < 1e-9
    assert got["corehour_enforcement_actions_total", (("action", "stopped"),)] == 1
    # The gauge is the latest cycle's: nobody is under a threshold any more.
    for threshold in ("10", "25", "50"):
        assert got["corehour_accounts_below_warning", (("threshold_percent", threshold),)] == 0
    assert got["corehour_meter_last_cycle_timestamp_seconds", ()] > 0


def test_the_gauge_counts_accounts_under_each_lowest_threshold():
    metrics = BillingMetrics()
    plan = Plan(warnings=[("b", 10), ("c", 10), ("d", 25)])
    metrics.record(0.1, CycleReport(now=0), plan, thresholds=(10, 25, 50))
    got = samples(metrics)
    assert got["corehour_accounts_below_warning", (("threshold_percent", "10"),)] == 2
    assert got["corehour_accounts_below_warning", (("threshold_percent", "25"),)] == 1
    assert got["corehour_accounts_below_warning", (("threshold_percent", "50"),)] == 0


def test_a_failed_cycle_is_counted_as_failed():
    metrics = BillingMetrics()
    metrics.record(1.5, None, None)
    got = samples(metrics)
    assert got["corehour_meter_cycles_total", (("outcome", "failed"),)] == 1
    assert got["corehour_meter_jobs_charged_total", ()] == 0
