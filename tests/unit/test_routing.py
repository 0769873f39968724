"""The auto cluster choice."""

from datetime import datetime, timedelta

import pytest

from spawners.routing import NoClusterAvailable, choose_cluster

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
