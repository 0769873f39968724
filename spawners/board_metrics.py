"""Jobs and nodes by state for each cluster, from the status board's one ``squeue`` per cycle
(and its ``sinfo`` once a minute), for the hub's ``/hub/metrics``: Prometheus sees the queue
and the nodes at no cost of its own to Slurm.

A collector, not gauges set on each query: a scrape reads the boards' newest answers as they
are, and a cluster the hub has no reason to watch (no server there) shows no queue, not a stale
one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .status_board import StatusBoard


class BoardCollector(Collector):
    def __init__(self, boards: Callable[[], Iterable[StatusBoard]]):
        self.boards = boards

    def collect(self):
        jobs = GaugeMetricFamily(
            "corehour_cluster_jobs",
            "Jobs in the cluster's queue by state, from the hub's last squeue of it.",
            labels=["cluster", "state"],
        )
        reachable = GaugeMetricFamily(
            "corehour_cluster_reachable",
            "1 when the cluster answered the hub's last squeue, 0 when it did not.",
            labels=["cluster"],
        )
        age = GaugeMetricFamily(
            "corehour_cluster_answer_age_seconds",
            "Seconds since the hub's last squeue of the cluster began.",
            labels=["cluster"],
        )
        queries = CounterMetricFamily(
            "corehour_cluster_queries",
            "squeue and sinfo queries the hub ran against the cluster (shared by all servers).",
            labels=["cluster"],
        )
        nodes = GaugeMetricFamily(
            "corehour_cluster_nodes",
            "Nodes of the cluster by state, from the hub's last sinfo of it (once a minute).",
            labels=["cluster", "state"],
        )
        cpus = GaugeMetricFamily(
            "corehour_cluster_cpus",
            "Cores of the cluster: allocated to jobs, and in all, from the hub's last sinfo.",
            labels=["cluster", "kind"],
        )
        for board in self.boards():
            now = board.clock()
            for cluster, snap in sorted(board.latest().items()):
                reachable.add_metric([cluster], 1.0 if snap.reachable else 0.0)
                age.add_metric([cluster], max(0.0, now - snap.started_at))
                if snap.jobs is not None:
                    by_state = Counter(job.state for job in snap.jobs.values())
                    for state, count in sorted(by_state.items()):
                        jobs.add_metric([cluster, state], count)
            for cluster, count in sorted(board.queries.items()):
                queries.add_metric([cluster], count)
            for cluster, counted in sorted(board.nodes().items()):
                for state, count in sorted(counted.by_state.items()):
                    nodes.add_metric([cluster, state], count)
                cpus.add_metric([cluster, "allocated"], counted.cpus_allocated)
                cpus.add_metric([cluster, "total"], counted.cpus_total)
        yield from (jobs, reachable, age, queries, nodes, cpus)


def register(boards: Callable[[], Iterable[StatusBoard]], registry=None) -> None:
    """Add the collector to ``registry`` (the hub's: prometheus_client's global one) once."""
    from prometheus_client import REGISTRY

    registry = registry or REGISTRY
    if not getattr(registry, "_corehour_boards", False):
        registry.register(BoardCollector(boards))
        registry._corehour_boards = True
