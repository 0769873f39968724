"""Parse what Slurm prints: ``squeue --json``, ``sacct --json``, ``sinfo --json`` and
``sbatch --test-only``.

Slurm 22.05 (Debian 12) prints plain values; Slurm 23.02 and later (Debian 13
ships 24.11) wrap numbers as ``{"set": true, "number": N}`` and states as
lists.  The helpers below accept both, so the rest of corehour sees one shape.

:func:`slurm_jobs` is corehour's one decoder of squeue and sacct JSON: the hub's status
board, the meter and the apps' job views all read jobs through it.  It is CPU work that
grows with the queue, so callers on an event loop run it in a thread.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

PENDING_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESV_DEL_HOLD",
        "SPECIAL_EXIT",
    }
)
# Only these mean the job is over.  Anything else Slurm may print (SIGNALING,
# STOPPED, SUSPENDED, STAGE_OUT, a state a newer Slurm adds) keeps the server:
# declaring a live job dead would leave it running, and billing, unseen.
ENDED_STATES = frozenset(
    {
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
    }
)


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    state: str
    reason: str
    user: str
    partition: str
    node: str
    start_time: int | None
    submit_time: int | None
    priority: int
    tres_alloc: str = ""
    name: str = ""
    account: str = ""
    output: str = ""  # Slurm's output pattern, e.g. /home/x/%x-%j.out
    workdir: str = ""

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def alive(self) -> bool:
        return self.state not in ENDED_STATES

    @property
    def running(self) -> bool:
        return self.alive and not self.pending


def slurm_number(value: object) -> int | None:
    """A Slurm number: plain, or ``{"set": bool, "infinite": bool, "number": N}``."""
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def slurm_state(value: object) -> str:
    """A job state: Slurm 22.05 prints a string, later versions a list of flags."""
    if isinstance(value, list):
        return str(value[0]) if value else "UNKNOWN"
    return str(value or "UNKNOWN")


def slurm_text(value: object) -> str:
    """A Slurm text field; null is empty."""
    return "" if value is None else str(value)


def parse_job(raw: Mapping[str, object]) -> JobInfo:
    start = slurm_number(raw.get("start_time"))
    submit = slurm_number(raw.get("submit_time"))
    return JobInfo(
        job_id=str(slurm_number(raw.get("job_id"))),
        state=slurm_state(raw.get("job_state")),
        reason=slurm_text(raw.get("state_reason")) or "None",
        user=slurm_text(raw.get("user_name")),
        partition=slurm_text(raw.get("partition")),
        node=slurm_text(raw.get("batch_host")) or slurm_text(raw.get("nodes")),
        start_time=start or None,
        submit_time=submit or None,
        priority=slurm_number(raw.get("priority")) or 0,
        tres_alloc=slurm_text(raw.get("tres_alloc_str")),
        name=slurm_text(raw.get("name")),
        account=slurm_text(raw.get("account")),
        output=slurm_text(raw.get("standard_output")),
        workdir=slurm_text(raw.get("current_working_directory")),
    )


class SlurmOutputError(ValueError):
    """Slurm printed something we cannot read."""


# Only the fields corehour reads.  Slurm prints a hundred or so per job (sacct adds every
# step): msgspec skips the rest without building Python objects for them, which makes
# decoding 5,000 jobs about seven times faster than json.loads.
class _SqueueJob(msgspec.Struct):
    job_id: Any = None
    job_state: Any = None
    state_reason: Any = None
    user_name: Any = None
    account: Any = None
    partition: Any = None
    name: Any = None
    batch_host: Any = None
    nodes: Any = None
    start_time: Any = None
    submit_time: Any = None
    priority: Any = None
    tres_alloc_str: Any = None
    # Where the job writes its output (a pattern such as /home/x/%x-%j.out) and runs.
    standard_output: Any = None
    current_working_directory: Any = None


class _SacctJob(msgspec.Struct):
    job_id: Any = None
    user: Any = None
    account: Any = None
    partition: Any = None
    name: Any = None
    state: Any = None
    time: Any = None
    tres: Any = None
    exit_code: Any = None
    cluster: Any = None
    working_directory: Any = None


class _SacctUsageJob(_SacctJob):
    """A job with what its steps used: the My jobs page reads efficiency from it."""

    steps: Any = None


class _SqueueDocument(msgspec.Struct):
    jobs: list[_SqueueJob]
    errors: Any = None


class _SacctDocument(msgspec.Struct):
    jobs: list[_SacctJob]
    errors: Any = None


class _SacctUsageDocument(msgspec.Struct):
    jobs: list[_SacctUsageJob]
    errors: Any = None


_DECODERS = {
    "squeue": msgspec.json.Decoder(_SqueueDocument),
    "sacct": msgspec.json.Decoder(_SacctDocument),
    # sacct with each job's steps, which the meter never needs and would only pay to decode.
    "sacct-steps": msgspec.json.Decoder(_SacctUsageDocument),
}


def slurm_jobs(text: str | bytes, command: str) -> list[dict]:
    """The jobs of ``squeue --json`` or ``sacct --json`` (``command``: "squeue", "sacct", or
    "sacct-steps" to keep each job's steps too) output, each a dict of the fields corehour reads; SlurmOutputError for output that is not such JSON, or that
    reports errors (Slurm 22.05 can exit 0 with an error list when the controller is down)."""
    program = command.split("-")[0]
    try:
        document = _decode(text, _DECODERS[command])
    except msgspec.MsgspecError as e:
        raise SlurmOutputError(f"{program} --json printed something unreadable: {e}") from None
    errors = [e for e in document.errors or () if not _nothing_found(e)]
    if errors:
        raise SlurmOutputError(f"{program} --json reported errors: {errors}")
    return [msgspec.structs.asdict(job) for job in document.jobs]


def _decode(text: str | bytes, decoder: msgspec.json.Decoder):
    """Decode with the cyclic garbage collector paused.

    Tens of megabytes of Slurm JSON allocate many containers; the collector would walk
    them again and again for no gain, since JSON cannot hold reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return decoder.decode(text)
    finally:
        if was_enabled:
            gc.enable()


def _nothing_found(error: object) -> bool:
    # sacct reports an empty window as an error (9003, "Nothing found"); it is no jobs.
    return isinstance(error, Mapping) and slurm_number(error.get("error_number")) == 9003


def parse_squeue_json(text: str | bytes) -> dict[str, JobInfo]:
    """Jobs by id from ``squeue --json`` output."""
    parsed = (parse_job(raw) for raw in slurm_jobs(text, "squeue"))
    return {job.job_id: job for job in parsed}


@dataclass(frozen=True)
class NodeInfo:
    name: str
    state: str
    partitions: tuple[str, ...]
    cpus: int
    alloc_cpus: int


def parse_sinfo_json(text: str) -> list[NodeInfo]:
    """Nodes from ``sinfo --json``: per node in 22.05, per partition row in 23.02 and later."""
    try:
        data = json.loads(text)
        if data.get("errors"):
            raise SlurmOutputError(f"sinfo --json reported errors: {data['errors']}")
        if "nodes" in data:
            return [
                NodeInfo(
                    name=slurm_text(n.get("name") or n.get("hostname")),
                    state=slurm_state(n.get("state")),
                    partitions=tuple(n.get("partitions") or ()),
                    cpus=slurm_number(n.get("cpus")) or 0,
                    alloc_cpus=slurm_number(n.get("alloc_cpus")) or 0,
                )
                for n in data["nodes"]
            ]
        nodes: dict[str, NodeInfo] = {}
        for row in data["sinfo"]:
            # A row's counts are for all its nodes together; each node gets its share, so
            # that sums over nodes are the row's.
            names = row["nodes"]["nodes"]
            share = max(len(names), 1)
            for name in names:
                seen = nodes.get(name)
                partitions = (
                    (*seen.partitions, row["partition"]["name"])
                    if seen
                    else (row["partition"]["name"],)
                )
                nodes[name] = NodeInfo(
                    name=name,
                    state=slurm_state(row["node"]["state"]),
                    partitions=partitions,
                    cpus=(slurm_number(row["cpus"]["total"]) or 0) // share,
                    alloc_cpus=(slurm_number(row["cpus"]["allocated"]) or 0) // share,
                )
        return list(nodes.values())
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SlurmOutputError(f"sinfo --json printed something unreadable: {e}") from None


def alloc_counts(tres_alloc: str) -> tuple[int, int, int]:
    """squeue's ``cpu=2,mem=4G,node=1,gres/gpu=1`` → (cores, GPUs, memory in MB)."""
    values = dict(part.split("=", 1) for part in tres_alloc.split(",") if "=" in part)
    memory = values.get("mem", "0M")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}.get(memory[-1:], 1)
    try:
        memory_mb = int(float(memory.rstrip("KMGT") or 0) * scale)
        return int(values.get("cpu", 0)), int(values.get("gres/gpu", 0)), memory_mb
    except ValueError:
        return 0, 0, 0


def queue_position(job_id: str, jobs: Iterable[JobInfo]) -> int | None:
    """1-based place of a pending job among pending jobs of its partition.

    Jobs ahead are those Slurm would consider first: higher priority, then
    earlier submission.  Returns None when the job is not pending.
    """
    jobs = list(jobs)
    mine = next((j for j in jobs if j.job_id == job_id), None)
    if mine is None or not mine.pending:
        return None

    def order(job: JobInfo) -> tuple[int, int, int]:
        return (-job.priority, job.submit_time or 0, int(job.job_id))

    ahead = [
        j for j in jobs if j.pending and j.partition == mine.partition and order(j) < order(mine)
    ]
    return len(ahead) + 1


_TEST_ONLY = re.compile(
    r"Job (?P<job>\d+) to start at (?P<when>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)"
    r".* in partition (?P<partition>\S+)"
)


def parse_test_only(text: str) -> datetime | None:
    """Expected start (local time) from ``sbatch --test-only`` output, or None."""
    match = _TEST_ONLY.search(text)
    if not match:
        return None
    return datetime.fromisoformat(match["when"])
