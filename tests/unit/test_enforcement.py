"""Pure billing decisions: who is warned, stopped or released; spawn refusals; idle timeouts."""

import datetime as dt
from decimal import Decimal

import pytest

from billing_hooks.enforce import AccountSnapshot, percent_left, plan
from billing_hooks.gate import AccountChoice, refusal
from billing_hooks.idle import make_arbiter, owner_of, timeout_minutes

pytestmark = pytest.mark.unit


def account(available, reference=100_000, jobs=(), held=False, name="u-alice"):
    return AccountSnapshot(1, name, available, reference, ("alice",), tuple(jobs), held)


def test_thresholds_warn_at_the_lowest_one_crossed():
    decided = plan([account(15_000), account(4_000, name="b"), account(50_000, name="c")], [20, 5])
    assert [(a.name, t) for a, t in decided.warnings] == [("u-alice", 20), ("b", 5)]
    assert not decided.exhausted


def test_an_exhausted_account_with_jobs_is_stopped_and_one_without_is_held_once():
    running = account(-10, jobs=[("alpha", "7")])
    idle_unheld = account(0, name="idle")
    idle_held = account(0, name="held", held=True)
    decided = plan([running, idle_unheld, idle_held], [20, 5])
    assert [a.name for a in decided.exhausted] == ["u-alice", "idle"]


def test_a_topped_up_held_account_is_released():
    decided = plan([account(50_000, held=True)], [20, 5])
    assert [a.name for a in decided.recovered] == ["u-alice"]


def test_percent_left_without_a_reference():
    assert percent_left(account(10, reference=0)) == 100.0
    assert percent_left(account(-1, reference=0)) == 0.0
    assert percent_left(account(25_000)) == 25.0


def choice(available, status="active"):
    return AccountChoice(
        "u-alice", "alice", "personal", available, available, 0, Decimal(1), status
    )


def test_a_spawn_is_admitted_when_the_minimum_run_is_covered():
    # 36.72 credits per hour; 15 minutes need 9.18
    assert refusal(choice(9_180), 36_720, 15, "alpha/cpu", "Top up.") is None


def test_the_refusal_states_price_minimum_balance_and_what_to_do():
    message = refusal(choice(9_179), 36_720, 15, "alpha/cpu", "Ask for a top-up at /usage.")
    assert message == (
        "Not enough credits in account u-alice. This server costs 36.720 credits per hour on "
        "alpha/cpu; a minimum run of 15 minutes needs 9.180. The account has 9.179 available "
        "(balance 9.179, credit limit 0.000). Ask for a top-up at /usage."
    )


def test_a_suspended_account_cannot_spawn_and_a_free_partition_needs_no_credit():
    assert "is suspended" in refusal(choice(10**6, "suspended"), 100, 15, "x", "")
    assert refusal(choice(0), 0, 15, "alpha/free", "") is None
    assert refusal(choice(0), 36_720, 0, "alpha/cpu", "") is not None  # nothing left at all


def test_idle_timeouts_per_profile_and_the_person_is_told():
    told = []
    arbiter = make_arbiter({"default": 60, "gpu": 20}, lambda *a: told.append(a))
    gpu = {"name": "", "url": "/user/alice/", "user_options": {"profile": "gpu"}}
    cpu = {"name": "big", "url": "/user/bob%40x/big/", "user_options": {"profile": "cpu"}}
    assert not arbiter(inactive=dt.timedelta(minutes=19), inactive_limit=0, server=gpu)
    assert arbiter(inactive=dt.timedelta(minutes=20), inactive_limit=0, server=gpu)
    assert not arbiter(inactive=dt.timedelta(minutes=59), inactive_limit=0, server=cpu)
    assert arbiter(inactive=dt.timedelta(minutes=61), inactive_limit=0, server=cpu)
    assert told == [("alice", "", 20), ("bob@x", "big", 60)]
    assert timeout_minutes({}, "cpu") == 60
    assert owner_of({"url": "/prefix/user/carol/", "name": ""}) == ("carol", "")
