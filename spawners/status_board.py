"""One ``squeue --json`` per cluster per cycle, shared by every spawner in the hub.

Stock batchspawner runs ``squeue -j <id>`` once per server per poll, so the
hub's cost grows with the number of servers.  Here every spawner reads a
shared snapshot.  Requests that arrive while a query is in flight wait for
it instead of starting another, and a background cycle per cluster refreshes
the snapshot and tells the hub at once about servers whose jobs ended.

The same cycle asks for the cluster's nodes (``sinfo --json``) at most once a minute, for
the hub's metrics: node states change slowly, and nobody waits on them.

A failed query gives a snapshot with ``jobs = None``: Slurm's answer is
*unknown*, which callers must treat as "keep the server and ask again", never
as "the job is gone".
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from centre.slurm_json import (
    JobInfo,
    NodeInfo,
    SlurmOutputError,
    parse_sinfo_json,
    parse_squeue_json,
)

log = logging.getLogger("corehour.status")


@dataclass(frozen=True)
class Snapshot:
    cluster: str
    started_at: float  # monotonic time the query began
    jobs: dict[str, JobInfo] | None
    error: str = ""

    @property
    def reachable(self) -> bool:
        return self.jobs is not None


class SlurmUnknown(RuntimeError):
    """Slurm did not answer, so whether a job runs is unknown for now."""


Fetch = Callable[[str], Awaitable[str]]
# How often the cycle asks a cluster for its nodes, in seconds.
NODES_EVERY = 60.0


@dataclass(frozen=True)
class NodeCount:
    """A cluster's nodes by state, and its cores allocated and in all, at one moment."""

    started_at: float
    by_state: dict[str, int]
    cpus_allocated: int
    cpus_total: int


def count_nodes(nodes: list[NodeInfo], started_at: float) -> NodeCount:
    return NodeCount(
        started_at=started_at,
        by_state=dict(Counter(node.state for node in nodes)),
        cpus_allocated=sum(node.alloc_cpus for node in nodes),
        cpus_total=sum(node.cpus for node in nodes),
    )


class StatusBoard:
    """Shared, coalescing cache of ``squeue --json`` per cluster."""

    def __init__(
        self,
        fetch: Fetch,
        clock: Callable[[], float] = time.monotonic,
        fetch_nodes: Fetch | None = None,
    ):
        self._fetch = fetch
        self._fetch_nodes = fetch_nodes
        self._nodes: dict[str, NodeCount] = {}
        self._nodes_asked: dict[str, float] = {}
        self._nodes_tasks: dict[str, asyncio.Task[None]] = {}
        self.clock = clock
        self._latest: dict[str, Snapshot] = {}
        self._inflight: dict[str, tuple[float, asyncio.Task[Snapshot]]] = {}
        self._watchers: dict[str, weakref.WeakSet] = {}
        self._cycles: dict[str, asyncio.Task[None]] = {}
        self._notifying: set[asyncio.Task[None]] = set()
        self.queries: Counter[str] = Counter()

    async def snapshot(self, cluster: str, newer_than: float) -> Snapshot:
        """A snapshot whose query began at or after ``newer_than`` (monotonic)."""
        latest = self._latest.get(cluster)
        if latest is not None and latest.started_at >= newer_than:
            return latest
        inflight = self._inflight.get(cluster)
        if inflight is not None:
            started, task = inflight
            result = await asyncio.shield(task)
            if started >= newer_than:
                return result
            return await self.snapshot(cluster, newer_than)
        return await self._query(cluster)

    async def _query(self, cluster: str) -> Snapshot:
        started = self.clock()
        task = asyncio.ensure_future(self._run_query(cluster, started))
        self._inflight[cluster] = (started, task)
        return await asyncio.shield(task)

    async def _run_query(self, cluster: str, started: float) -> Snapshot:
        self.queries[cluster] += 1
        try:
            # Off the event loop: a big queue takes milliseconds to decode.
            jobs = await asyncio.to_thread(parse_squeue_json, await self._fetch(cluster))
            snap = Snapshot(cluster, started, jobs)
        except (OSError, RuntimeError, SlurmOutputError) as e:
            log.warning(
                "Slurm on %s did not answer; job states are unknown for now: %s", cluster, e
            )
            snap = Snapshot(cluster, started, None, str(e))
        finally:
            self._inflight.pop(cluster, None)
        current = self._latest.get(cluster)
        if current is None or current.started_at <= started:
            self._latest[cluster] = snap
        return snap

    # A job's owner is read from an answer at most this old, or, when it does not show the
    # job (one that started since), from one at most RECHECK_WITHIN old: however often
    # someone asks, a cluster gets one more squeue per RECHECK_WITHIN seconds at most.
    FRESH_WITHIN = 60.0
    RECHECK_WITHIN = 10.0

    async def started_job(self, cluster: str, job_id: str) -> JobInfo | None:
        """``job_id`` on ``cluster`` once it has left the queue: running, or ended so recently
        that squeue still lists it (a cancelled job's last report comes as it ends).  None when
        no recent answer shows it so.  Raises :class:`SlurmUnknown` when Slurm did not answer,
        which is not the same as "no such job"."""
        for within in (self.FRESH_WITHIN, self.RECHECK_WITHIN):
            snap = await self.snapshot(cluster, newer_than=self.clock() - within)
            if snap.jobs is None:
                raise SlurmUnknown(f"Slurm on {cluster} did not answer: {snap.error}")
            job = snap.jobs.get(job_id)
            if job is not None and not job.pending:
                return job
        return None

    def latest(self) -> dict[str, Snapshot]:
        """Each cluster's newest answer (or failure to answer), for metrics and pages."""
        return dict(self._latest)

    def nodes(self) -> dict[str, NodeCount]:
        """Each cluster's node count of the last two minutes (clusters the hub watches)."""
        now = self.clock()
        return {
            name: count
            for name, count in self._nodes.items()
            if now - count.started_at <= 2 * NODES_EVERY
        }

    async def refresh_nodes(self, cluster: str) -> None:
        """Ask for the cluster's nodes if the last try is older than NODES_EVERY."""
        if self._fetch_nodes is None:
            return
        started = self.clock()
        asked = self._nodes_asked.get(cluster)
        if asked is not None and started - asked < NODES_EVERY:
            return
        # A failed or slow sinfo is tried again a minute later, not every cycle.
        self._nodes_asked[cluster] = started
        try:
            nodes = await asyncio.to_thread(parse_sinfo_json, await self._fetch_nodes(cluster))
        except (OSError, RuntimeError, SlurmOutputError) as e:
            # Metrics only: a stale count is dropped, not shown.
            log.debug("sinfo on %s did not answer: %s", cluster, e)
            self._nodes.pop(cluster, None)
            return
        self.queries[cluster] += 1
        self._nodes[cluster] = count_nodes(nodes, started)

    def _refresh_nodes_aside(self, cluster: str) -> None:
        # Beside the cycle, never in its way: ended jobs are told to the hub without waiting.
        running = self._nodes_tasks.get(cluster)
        if running is None or running.done():
            self._nodes_tasks[cluster] = asyncio.ensure_future(self.refresh_nodes(cluster))

    def unreachable(self, within: float = 60.0) -> dict[str, str]:
        """Clusters whose latest answer, at most ``within`` seconds old, was no answer: why."""
        now = self.clock()
        return {
            name: snap.error or "no answer"
            for name, snap in self._latest.items()
            if not snap.reachable and now - snap.started_at <= within
        }

    # -- the background cycle -------------------------------------------------

    def watch(self, cluster: str, spawner: object, interval: float) -> None:
        """Check ``spawner``'s job every ``interval`` seconds and notify the hub when it ends."""
        self._watchers.setdefault(cluster, weakref.WeakSet()).add(spawner)
        cycle = self._cycles.get(cluster)
        if cycle is None or cycle.done():
            # Once per cluster, not per server or cycle: how often the hub asks this Slurm.
            log.info(
                "Watching servers on cluster %s: one squeue --json every %g s for all of them",
                cluster,
                interval,
            )
            self._cycles[cluster] = asyncio.ensure_future(self._cycle(cluster, interval))

    def unwatch(self, cluster: str, spawner: object) -> None:
        watchers = self._watchers.get(cluster)
        if watchers is not None:
            watchers.discard(spawner)

    async def _cycle(self, cluster: str, interval: float) -> None:
        while self._watchers.get(cluster):
            await asyncio.sleep(interval)
            snap = await self.snapshot(cluster, newer_than=self.clock())
            if not snap.reachable:
                continue
            self._refresh_nodes_aside(cluster)
            for spawner in list(self._watchers.get(cluster, ())):
                if getattr(spawner, "pending", None):
                    continue  # starting or stopping: the hub is already on it
                if getattr(spawner, "_submitted_at", 0.0) > snap.started_at:
                    continue  # a new job, submitted after this query began
                job = snap.jobs.get(getattr(spawner, "job_id", ""))
                if job is None or not job.alive:
                    task = asyncio.ensure_future(_notify(spawner))
                    self._notifying.add(task)
                    task.add_done_callback(self._notifying.discard)
        log.info("No servers left on cluster %s; its squeue cycle stops", cluster)


async def _notify(spawner: object) -> None:
    try:
        await spawner.poll_and_notify()
    except Exception:  # a failing callback must not stop the cycle for everyone else
        log.exception("Telling the hub that a server's job ended failed")
