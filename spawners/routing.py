"""Choose a cluster for ``cluster: auto``.

Pure: the caller asks each candidate cluster when the job would start
(``sbatch --test-only``) and passes the answers in.  The rule:

1. a cluster that can start the job now wins, the first one in the site file
   if several can;
2. otherwise the earliest expected start wins;
3. ties go to the cluster listed first in the site file.

A cluster that did not answer (``None``) is never chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

# sbatch --test-only rounds to the second and the scheduler needs a moment,
# so "now" means within this slack of the question being asked.
START_NOW_SLACK = timedelta(seconds=5)


class NoClusterAvailable(RuntimeError):
    """None of the candidate clusters answered."""


def choose_cluster(
    candidates: Sequence[str],
    expected_starts: Mapping[str, datetime | None],
    now: datetime,
) -> str:
    answered = [(name, expected_starts.get(name)) for name in candidates]
    answered = [(name, when) for name, when in answered if when is not None]
    if not answered:
        raise NoClusterAvailable(
            f"None of the clusters {', '.join(candidates)} can take the job right now; "
            "try again in a minute or pick a cluster yourself."
        )
    for name, when in answered:
        if when <= now + START_NOW_SLACK:
            return name
    # min() keeps the first of equal keys, which is the site-file order.
    return min(answered, key=lambda pair: pair[1])[0]
