"""An ended job's efficiency and the cost of its idle part; a cluster's last day."""

from decimal import Decimal

from centre.pricing import Price, RateBook, RatePeriod
from extensions.monitoring.efficiency import JobUse, efficiency, job_use, waste_in_words
from extensions.monitoring.last_day import last_day
from extensions.monitoring.overview import wait_in_words

NOW = 1_800_000_000
# 36 credits a core-hour (10 mc a core-second), 0.36 a GB-hour: the tests' dear rates.
RATES = RateBook(
    {("alpha", "cpu"): [RatePeriod(0, None, Price(Decimal(36), Decimal(72), Decimal("0.36")))]}
)


def use(**changes) -> JobUse:
    values = dict(
        cluster="alpha", job_id="7", name="run", partition="cpu", account="lab", state="COMPLETED",
        start=NOW - 3600, end=NOW, elapsed_s=3600, cores=8, memory_mb=8192, gpus=0,
        cpu_seconds=4 * 3600.0, max_rss_bytes=2 * 1024**3,
    )  # fmt: skip
    values.update(changes)
    return JobUse(**values)


def test_half_the_cores_idle_for_an_hour_costs_half_the_core_hours():
    result = efficiency(use(), RATES)
    assert result.cpu_percent == 50.0
    assert result.memory_percent == 25.0
    assert result.idle_cores == 4.0
    assert result.unused_memory_gb == 6.0
    # 4 idle cores × 1 h × 36 + 6 GB × 1 h × 0.36 = 146.16 credits
    assert result.waste_mc == 146_160
    assert waste_in_words(use(), result, wait_in_words) == (
        "4 of 8 cores idle and 6 GB of memory unused for 60 min: 146.160 credits"
    )


def test_no_efficiency_while_running_or_for_a_job_that_never_ran():
    assert efficiency(use(state="RUNNING"), RATES) is None
    assert efficiency(use(state="CANCELLED", start=None, elapsed_s=0), RATES) is None


def test_unrecorded_memory_and_a_missing_rate_are_said_not_guessed():
    result = efficiency(use(max_rss_bytes=None, partition="nowhere"), RATES)
    assert result.memory_percent is None and result.unused_memory_gb == 0
    assert result.waste_mc is None
    assert waste_in_words(use(), result, wait_in_words).endswith(
        "no rate for this partition, so no price"
    )


def test_cpu_beyond_the_allocation_counts_as_fully_used():
    result = efficiency(use(cpu_seconds=9 * 3600.0, max_rss_bytes=8192 * 1024**2), RATES)
    assert (result.cpu_percent, result.idle_cores, result.waste_mc) == (100.0, 0.0, 0)


def test_a_gpu_job_says_its_gpu_use_is_not_recorded():
    assert "GPU use not recorded" in efficiency(use(gpus=1), RATES).gpu_note


def test_sacct_json_of_both_slurm_generations():
    old = {
        "job_id": 7, "name": "run", "partition": "cpu", "account": "lab", "user": "ann",
        "state": {"current": "COMPLETED", "reason": "None"},
        "time": {"start": NOW - 50, "end": NOW, "elapsed": 50},
        "tres": {"allocated": [{"type": "cpu", "name": None, "count": 2},
                               {"type": "mem", "name": None, "count": 500},
                               {"type": "gres", "name": "gpu", "count": 1}]},
        "steps": [
            {"time": {"total": {"seconds": 34, "microseconds": 989674}},
             "tres": {"requested": {"max": [{"type": "mem", "name": None, "count": 9777152}]}}},
            {"time": {"total": {"seconds": 1, "microseconds": 0}}, "tres": {}},
        ],
    }  # fmt: skip
    new = {
        **old,
        "job_id": {"set": True, "number": 7},
        "state": {"current": ["COMPLETED"], "reason": "None"},
        "time": {"start": {"set": True, "number": NOW - 50}, "end": {"set": True, "number": NOW},
                 "elapsed": 50},
    }  # fmt: skip
    for raw in (old, new):
        parsed = job_use(raw, "alpha")
        assert (parsed.job_id, parsed.state, parsed.cores, parsed.memory_mb, parsed.gpus) == (
            "7",
            "COMPLETED",
            2,
            500,
            1,
        )
        assert abs(parsed.cpu_seconds - 35.989674) < 1e-9
        assert parsed.max_rss_bytes == 9777152


def test_the_last_day_counts_only_what_ran_inside_it():
    jobs = [
        use(account="lab", start=NOW - 2 * 86400, end=NOW - 86400 + 3600, elapsed_s=86400 + 3600),
        use(account="big", job_id="8", cpu_seconds=8 * 3600.0),
        use(account="lab", job_id="9", state="RUNNING", end=None, elapsed_s=3600),
        use(account="old", job_id="10", start=NOW - 3 * 86400, end=NOW - 2 * 86400),
    ]
    day = last_day("alpha", jobs, cpus=32, rates=RATES, now=NOW)
    assert day.jobs == 3
    # 8 cores × (1 h + 1 h + 1 h) inside the day, of 32 cores × 24 h
    assert day.use_percent == round(100 * 8 * 3 * 3600 / (32 * 86400), 1)
    spend = dict(day.top_spend)
    per_hour_mc = (8 * 36 + 8 * 0.36) * 1000  # cores and memory, list rates
    assert spend["lab"] == round(2 * per_hour_mc)
    assert spend["big"] == round(per_hour_mc)
    assert "old" not in spend
    # "big" used every core; only the ended jobs of "lab" sat idle inside the day
    assert [account for account, _ in day.top_waste] == ["lab", "big"][: len(day.top_waste)]
    assert dict(day.top_waste).get("big", 0) > 0  # its unused memory still cost
