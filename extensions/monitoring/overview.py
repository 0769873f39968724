"""The admins' cluster overview, as numbers: nodes and partitions by state, the queue and how
long it has waited, and how much of each cluster is in use now, for each cluster and for the
whole network.  Pure: built from what ``sinfo --json`` and ``squeue --json`` said.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from centre.slurm_json import JobInfo, NodeInfo


@dataclass
class ClusterView:
    name: str
    error: str = ""
    nodes_by_state: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, dict[str, int]] = field(default_factory=dict)  # partition → state → nodes
    cpus: int = 0
    cpus_in_use: int = 0
    running: int = 0
    pending: int = 0
    longest_wait_s: int = 0
    median_wait_s: int = 0

    @property
    def use_percent(self) -> float:
        return 100.0 * self.cpus_in_use / self.cpus if self.cpus else 0.0


def cluster_view(
    name: str, nodes: Iterable[NodeInfo] | None, jobs: Mapping[str, JobInfo] | None, now: int,
    error: str = "",
) -> ClusterView:  # fmt: skip
    view = ClusterView(name, error=error)
    for node in nodes or ():
        view.nodes_by_state[node.state] = view.nodes_by_state.get(node.state, 0) + 1
        for partition in node.partitions:
            states = view.partitions.setdefault(partition, {})
            states[node.state] = states.get(node.state, 0) + 1
        view.cpus += node.cpus
        view.cpus_in_use += node.alloc_cpus
    waits = []
    for job in (jobs or {}).values():
        if job.running:
            view.running += 1
        elif job.pending:
            view.pending += 1
            if job.submit_time:
                waits.append(max(0, now - job.submit_time))
    if waits:
        view.longest_wait_s = max(waits)
        view.median_wait_s = int(statistics.median(waits))
    return view


def network_view(views: Iterable[ClusterView]) -> ClusterView:
    """The whole network as one more row: sums, and the longest wait anywhere."""
    total = ClusterView("all clusters")
    states: Counter[str] = Counter()
    for view in views:
        states.update(view.nodes_by_state)
        total.cpus += view.cpus
        total.cpus_in_use += view.cpus_in_use
        total.running += view.running
        total.pending += view.pending
        total.longest_wait_s = max(total.longest_wait_s, view.longest_wait_s)
    total.nodes_by_state = dict(states)
    return total


def wait_in_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
