"""Charge computation: table tests and properties over how cycles slice a job."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_hooks.metering import Progress, plan_job
from billing_hooks.usage import JobUsage
from centre.pricing import (
    BUCKET_SECONDS,
    JobCost,
    NoRateError,
    Price,
    RateBook,
    RatePeriod,
    Tres,
    exact_cost_mc,
    format_credits,
    hourly_price_mc,
    parse_credits,
    round_mc,
    slices,
)

pytestmark = pytest.mark.unit

ONE_CORE, TWO_CORES = Tres(1), Tres(2)
T0 = 1_790_000_000 - 1_790_000_000 % BUCKET_SECONDS  # an hour boundary
CPU_ONLY = (RatePeriod(0, None, Price(Decimal("0.05"))),)
CPU_GPU_MEM = (RatePeriod(0, None, Price(Decimal("0.05"), Decimal("1.2"), Decimal("0.004"))),)
# 0.05 credits per core-hour until T0 + 1800, then 0.08.
RATE_CHANGE = (
    RatePeriod(0, T0 + 1800, Price(Decimal("0.05"))),
    RatePeriod(T0 + 1800, None, Price(Decimal("0.08"))),
)


def job_cost(tres=ONE_CORE, periods=CPU_ONLY, start=T0, multiplier=Decimal(1)):
    return JobCost("alpha", "42", start, tres, periods, multiplier)


def total(rows):
    return sum(row.amount_mc for row in rows)


@pytest.mark.parametrize(
    ("tres", "periods", "seconds", "expected_mc"),
    [
        # One core for an hour at 0.05 credits: 50 mc.
        (Tres(1), CPU_ONLY, 3600, 50),
        # Partial interval: 4 cores for 90 s = 0.1 core-hours = 5 mc.
        (Tres(4), CPU_ONLY, 90, 5),
        # Rounding, half up once: 1 core for 10 s = 0.1389 mc → 0.
        (Tres(1), CPU_ONLY, 10, 0),
        # 1 core for 36 s = 0.5 mc exactly → rounds up to 1.
        (Tres(1), CPU_ONLY, 36, 1),
        # CPU plus GPU plus memory: 2 cores, 1 GPU, 8 GB for 30 min:
        # (2 × 0.05 + 1 × 1.2 + 8 × 0.004) / 2 credits = 0.666 credits.
        (Tres(2, 1, 8192), CPU_GPU_MEM, 1800, 666),
        # Rate change mid-job: 1 h, 30 min at 0.05 and 30 min at 0.08: 25 + 40 mc.
        (Tres(1), RATE_CHANGE, 3600, 65),
        # Zero-length job: nothing.
        (Tres(8), CPU_ONLY, 0, 0),
    ],
)
def test_cumulative_cost(tres, periods, seconds, expected_mc):
    assert job_cost(tres, periods).cumulative_mc(T0 + seconds) == expected_mc


def test_tier_multiplier_scales_the_price():
    cheap = job_cost(Tres(1), CPU_ONLY, multiplier=Decimal("0.5"))
    assert cheap.cumulative_mc(T0 + 3600) == 25


def test_a_job_without_a_price_is_refused_not_guessed():
    later_only = (RatePeriod(T0 + 60, None, Price(Decimal(1))),)
    with pytest.raises(NoRateError, match="no rate covers"):
        exact_cost_mc(Tres(1), later_only, T0, T0 + 120, Decimal(1))
    with pytest.raises(NoRateError, match="no rate for alpha/gpu"):
        RateBook({}).periods("alpha", "gpu")


def test_slices_split_at_hour_boundaries_and_close_full_hours():
    rows = slices(job_cost(Tres(1), start=T0 + 1800), T0 + 1800, T0 + 3 * 3600 + 60, ended=False)
    assert [(r.interval_start - T0, r.interval_end - T0, r.closed) for r in rows] == [
        (1800, 3600, True),
        (3600, 7200, True),
        (7200, 10800, True),
        (10800, 10860, False),
    ]
    assert total(rows) == job_cost(Tres(1), start=T0 + 1800).cumulative_mc(T0 + 3 * 3600 + 60)
    assert len({r.key for r in rows}) == 4


def test_the_last_interval_closes_at_the_end_time():
    rows = slices(job_cost(), T0, T0 + 100, ended=True)
    assert [(r.interval_end - T0, r.closed) for r in rows] == [(100, True)]


def usage(state="RUNNING", start=T0, end=None, suspended=0, tres=TWO_CORES):
    return JobUsage(
        "alpha", "42", "alice", "u-alice", "cpu", "job", state, start, end, suspended, tres
    )


def test_suspended_time_is_not_charged():
    booking = plan_job(
        usage("COMPLETED", end=T0 + 3600, suspended=600), CPU_ONLY, Decimal(1), None, T0 + 4000
    )
    # 2 cores × 3000 s × 0.05 / 3600 credits = 83.33 mc
    assert booking.delta_mc == 83
    assert booking.rows[-1].interval_end == T0 + 3000


def test_a_suspended_job_stands_still_until_it_resumes():
    progress = Progress(T0, 10, T0 + 360)
    assert plan_job(usage("SUSPENDED"), CPU_ONLY, Decimal(1), progress, T0 + 900) is None


def test_a_finished_job_is_never_charged_again():
    done = Progress(T0, 100, T0 + 3600, finished=True)
    assert (
        plan_job(usage("COMPLETED", end=T0 + 3600), CPU_ONLY, Decimal(1), done, T0 + 9000) is None
    )


def test_suspension_only_seen_at_the_end_is_refunded_in_the_last_row():
    running = plan_job(usage(), CPU_ONLY, Decimal(1), None, T0 + 3000)
    final = plan_job(
        usage("COMPLETED", end=T0 + 3000, suspended=1200),
        CPU_ONLY,
        Decimal(1),
        running.progress,
        T0 + 3100,
    )
    assert running.delta_mc + final.delta_mc == job_cost(Tres(2)).cumulative_mc(T0 + 1800)
    assert final.progress.finished


def test_credits_are_parsed_and_printed_exactly():
    assert parse_credits("12.5") == 12500
    assert parse_credits(" 0.001 ") == 1
    assert format_credits(12345) == "12.345"
    assert format_credits(-5) == "-0.005"
    for bad in ("NaN", "inf", "1e400x", "", "0.0001", "abc"):
        with pytest.raises(ValueError):
            parse_credits(bad)


def test_hourly_price_for_quotes():
    assert hourly_price_mc(CPU_GPU_MEM[0].price, Tres(2, 1, 8192)) == 1332


def test_round_mc_is_half_up():
    assert round_mc(Fraction(1, 2)) == 1
    assert round_mc(Fraction(3, 2)) == 2
    assert round_mc(Fraction(-1, 3)) == 0


# --- properties ---------------------------------------------------------------------------

tres_strategy = st.builds(
    Tres,
    cpus=st.integers(1, 256),
    gpus=st.integers(0, 8),
    mem_mb=st.integers(0, 2_000_000),
)
price_strategy = st.builds(
    Price,
    core_hour=st.decimals(0, 10, places=6),
    gpu_hour=st.decimals(0, 50, places=6),
    gb_mem_hour=st.decimals(0, 1, places=6),
)


@given(
    tres=tres_strategy,
    price=price_strategy,
    start_offset=st.integers(0, 7200),
    duration=st.integers(0, 5 * 24 * 3600),
    cuts=st.lists(st.integers(0, 5 * 24 * 3600), max_size=40),
    multiplier=st.decimals(Decimal("0.1"), 5, places=2),
)
def test_any_slicing_of_cycles_charges_exactly_tres_times_elapsed_times_rate(
    tres, price, start_offset, duration, cuts, multiplier
):
    """However the meter's cycles fall, the rows add up to TRES × elapsed × rate."""
    start = T0 + start_offset
    periods = (RatePeriod(0, None, price),)
    progress = None
    booked = 0
    rows_by_key = {}
    for cut in sorted(c for c in cuts if c < duration):
        booking = plan_job(
            usage(start=start, tres=tres), periods, multiplier, progress, start + cut
        )
        if booking is not None:
            booked += booking.delta_mc
            rows_by_key.update({row.key: row.amount_mc for row in booking.rows})
            progress = booking.progress
    final = plan_job(
        usage("COMPLETED", start=start, end=start + duration, tres=tres),
        periods,
        multiplier,
        progress,
        start + duration + 30,
    )
    booked += final.delta_mc
    rows_by_key.update({row.key: row.amount_mc for row in final.rows})

    expected = round_mc(price.mc_per_second(tres) * duration * Fraction(multiplier))
    assert booked == expected
    assert sum(rows_by_key.values()) == expected
    # The ledger grows with hours, not with cycles.
    assert len(rows_by_key) <= duration // BUCKET_SECONDS + 2


@given(
    tres=tres_strategy,
    change_at=st.integers(1, 7200),
    duration=st.integers(1, 4 * 3600),
    cuts=st.lists(st.integers(0, 4 * 3600), max_size=20),
)
def test_slicing_across_a_rate_change_is_exact(tres, change_at, duration, cuts):
    periods = (
        RatePeriod(0, T0 + change_at, Price(Decimal("0.05"), Decimal("1.5"))),
        RatePeriod(T0 + change_at, None, Price(Decimal("0.07"), Decimal("2.25"))),
    )
    progress, booked = None, 0
    for cut in sorted(c for c in cuts if c < duration):
        booking = plan_job(usage(tres=tres), periods, Decimal(1), progress, T0 + cut)
        if booking:
            booked, progress = booked + booking.delta_mc, booking.progress
    final = plan_job(
        usage("COMPLETED", end=T0 + duration, tres=tres),
        periods,
        Decimal(1),
        progress,
        T0 + duration,
    )
    assert booked + final.delta_mc == round_mc(
        exact_cost_mc(tres, periods, T0, T0 + duration, Decimal(1))
    )
