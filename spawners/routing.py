"""Choose a cluster for ``cluster: auto``, local or at another centre.

Pure: the caller asks each candidate cluster when the job would start
(``sbatch --test-only``, over ssh for a remote one) and what an hour of it costs there,
and passes the answers in.  The rule:

1. the clusters that can start the job now tie, and the cheapest of them wins;
2. otherwise the earliest expected start wins, and equal starts go to the cheapest;
3. remaining ties go to the cluster listed first in the site file.

A cluster that did not answer (``None``) is never chosen; a cluster without a price
(no billing) counts as free.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime, timedelta

# sbatch --test-only rounds to the second and the scheduler needs a moment,
# so "now" means within this slack of the question being asked.
START_NOW_SLACK = timedelta(seconds=5)
# How long a cluster's --test-only answer is reused for the same request shape.
ANSWER_TTL_SECONDS = 5.0


class NoClusterAvailable(RuntimeError):
    """None of the candidate clusters answered."""


def choose_cluster(
    candidates: Sequence[str],
    expected_starts: Mapping[str, datetime | None],
    now: datetime,
    hourly_prices: Mapping[str, int] | None = None,
) -> str:
    prices = hourly_prices or {}
    answered = [(name, expected_starts.get(name)) for name in candidates]
    answered = [(name, when) for name, when in answered if when is not None]
    if not answered:
        raise NoClusterAvailable(
            f"None of the clusters {', '.join(candidates)} can take the job right now; "
            "try again in a minute or pick a cluster yourself."
        )

    def soonest_then_cheapest(pair: tuple[str, datetime]) -> tuple[datetime, int]:
        name, when = pair
        return (max(when, now + START_NOW_SLACK), prices.get(name, 0))

    # min() keeps the first of equal keys, which is the site-file order.
    return min(answered, key=soonest_then_cheapest)[0]


class RecentAnswers:
    """Each cluster's last ``--test-only`` answer per request shape, for ``ttl`` seconds.

    A class that spawns together asks once per cluster and shape instead of once per
    person: over ssh each question is a round trip to another centre.
    """

    def __init__(
        self, ttl: float = ANSWER_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl = ttl
        self.clock = clock
        self._answers: dict[Hashable, tuple[float, datetime | None]] = {}

    async def get(
        self, key: Hashable, ask: Callable[[], Awaitable[datetime | None]]
    ) -> datetime | None:
        now = self.clock()
        kept = self._answers.get(key)
        if kept is not None and now - kept[0] < self.ttl:
            return kept[1]
        answer = await ask()
        self._answers = {k: v for k, v in self._answers.items() if now - v[0] < self.ttl}
        self._answers[key] = (now, answer)
        return answer


def start_estimates(
    candidates: Sequence[str],
    expected_starts: Mapping[str, datetime | None],
    now: datetime,
    hourly_prices: Mapping[str, int],
    unreachable: Mapping[str, str],
) -> list[dict]:
    """What the spawn form shows per cluster: when the job would start there, what an hour
    costs, and which one ``auto`` would pick — the same rule as :func:`choose_cluster`."""
    try:
        pick = choose_cluster(candidates, expected_starts, now, hourly_prices)
    except NoClusterAvailable:
        pick = None
    rows = []
    for name in candidates:
        when = expected_starts.get(name)
        if name in unreachable:
            state, note = "unreachable", unreachable[name]
        elif when is None:
            state, note = "no_answer", "Slurm there cannot take this request now"
        elif when <= now + START_NOW_SLACK:
            state, note = "now", "would start now"
        else:
            state, note = "later", f"would start in about {_in_words(when - now)}"
        rows.append(
            {
                "cluster": name,
                "state": state,
                "note": note,
                "expected_start": when.isoformat(timespec="seconds") if when else None,
                "hourly_mc": hourly_prices.get(name),
                "auto_pick": name == pick,
            }
        )
    return rows


def _in_words(wait: timedelta) -> str:
    minutes = max(1, round(wait.total_seconds() / 60))
    if minutes < 90:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"
