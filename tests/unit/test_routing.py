"""The auto cluster choice."""

import asyncio
from datetime import datetime, timedelta

import pytest

from spawners.routing import NoClusterAvailable, RecentAnswers, choose_cluster, start_estimates

NOW = datetime(2026, 11, 26, 12, 0, 0)
LATER = NOW + timedelta(minutes=30)
MUCH_LATER = NOW + timedelta(hours=3)


@pytest.mark.parametrize(
    ("candidates", "starts", "chosen"),
    [
        (["alpha", "beta"], {"alpha": NOW, "beta": NOW}, "alpha"),
        (["beta", "alpha"], {"alpha": NOW, "beta": NOW}, "beta"),
        (["alpha", "beta"], {"alpha": LATER, "beta": NOW}, "beta"),
        (["alpha", "beta"], {"alpha": NOW + timedelta(seconds=3), "beta": NOW}, "alpha"),
        (["alpha", "beta"], {"alpha": MUCH_LATER, "beta": LATER}, "beta"),
        (["alpha", "beta"], {"alpha": LATER, "beta": LATER}, "alpha"),
        (["alpha", "beta", "gamma"], {"alpha": MUCH_LATER, "beta": LATER, "gamma": LATER}, "beta"),
        (["alpha", "beta"], {"alpha": None, "beta": MUCH_LATER}, "beta"),
        (["alpha", "beta"], {"alpha": NOW - timedelta(seconds=1), "beta": NOW}, "alpha"),
        (["alpha", "beta"], {"beta": LATER}, "beta"),
        (["alpha"], {"alpha": MUCH_LATER}, "alpha"),
    ],
)
def test_choose_cluster(candidates, starts, chosen):
    assert choose_cluster(candidates, starts, NOW) == chosen


def test_no_answer_from_any_cluster_is_an_error_for_people():
    with pytest.raises(NoClusterAvailable, match="pick a cluster yourself"):
        choose_cluster(["alpha", "beta"], {"alpha": None, "beta": None}, NOW)


@pytest.mark.parametrize(
    ("starts", "prices", "chosen"),
    [
        # Both start now: the cheaper centre wins, wherever it is in the site file.
        (
            {"alpha": NOW, "beta": NOW, "gamma": NOW},
            {"alpha": 50, "beta": 40, "gamma": 30},
            "gamma",
        ),
        ({"alpha": NOW, "beta": NOW + timedelta(seconds=4)}, {"alpha": 50, "beta": 40}, "beta"),
        # Sooner beats cheaper.
        ({"alpha": NOW, "gamma": LATER}, {"alpha": 50, "gamma": 1}, "alpha"),
        ({"alpha": MUCH_LATER, "gamma": LATER}, {"alpha": 1, "gamma": 50}, "gamma"),
        # Equal later starts: the cheaper; equal prices: the first in the site file.
        ({"alpha": LATER, "gamma": LATER}, {"alpha": 50, "gamma": 30}, "gamma"),
        ({"alpha": NOW, "gamma": NOW}, {"alpha": 30, "gamma": 30}, "alpha"),
        # A cluster that did not answer is skipped however cheap it is.
        ({"alpha": LATER, "gamma": None}, {"alpha": 50, "gamma": 0}, "alpha"),
    ],
)
def test_ties_in_start_go_to_the_cheaper_cluster(starts, prices, chosen):
    assert choose_cluster(["alpha", "beta", "gamma"], starts, NOW, prices) == chosen


def test_recent_answers_ask_each_cluster_once_per_shape_within_the_ttl():
    clock = [100.0]
    asked = []

    async def ask(cluster):
        asked.append(cluster)
        return NOW

    answers = RecentAnswers(ttl=5, clock=lambda: clock[0])

    async def run():
        for key in [
            ("gamma", "cpu", 2),
            ("gamma", "cpu", 2),
            ("alpha", "cpu", 2),
            ("gamma", "cpu", 4),
        ]:
            assert await answers.get(key, lambda k=key: ask(k[0])) == NOW
        clock[0] += 5
        await answers.get(("gamma", "cpu", 2), lambda: ask("gamma"))

    asyncio.run(run())
    assert asked == ["gamma", "alpha", "gamma", "gamma"]


def test_estimates_say_when_each_cluster_starts_its_price_and_autos_pick():
    rows = start_estimates(
        ["alpha", "beta", "gamma"],
        {"alpha": LATER, "beta": NOW, "gamma": NOW},
        NOW,
        {"alpha": 1000, "beta": 1500, "gamma": 1200},
        {},
    )
    by_name = {r["cluster"]: r for r in rows}
    assert [r["cluster"] for r in rows] == ["alpha", "beta", "gamma"]
    assert by_name["alpha"]["state"] == "later"
    assert by_name["alpha"]["note"] == "would start in about 30 min"
    assert by_name["alpha"]["expected_start"] == "2026-11-26T12:30:00"
    assert by_name["beta"]["state"] == by_name["gamma"]["state"] == "now"
    assert [r["hourly_mc"] for r in rows] == [1000, 1500, 1200]
    # Both start now: the cheaper one is what auto would take.
    assert [r["cluster"] for r in rows if r["auto_pick"]] == ["gamma"]


def test_estimates_name_an_unreachable_cluster_and_one_that_cannot_take_the_job():
    rows = start_estimates(
        ["alpha", "beta", "gamma"],
        {"alpha": None, "beta": MUCH_LATER},
        NOW,
        {"alpha": 1000},
        {"gamma": "ssh to 10.77.0.2 failed: Connection timed out"},
    )
    by_name = {r["cluster"]: r for r in rows}
    assert by_name["gamma"]["state"] == "unreachable"
    assert "Connection timed out" in by_name["gamma"]["note"]
    assert by_name["alpha"]["state"] == "no_answer"
    assert by_name["beta"]["note"] == "would start in about 3 h"
    assert by_name["beta"]["hourly_mc"] is None
    assert [r["cluster"] for r in rows if r["auto_pick"]] == ["beta"]


def test_estimates_with_no_cluster_able_pick_none():
    rows = start_estimates(["alpha"], {"alpha": None}, NOW, {}, {})
    assert rows[0]["auto_pick"] is False
