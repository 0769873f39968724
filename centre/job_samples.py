"""Job history: the minute samples a running job reports about itself, and how they age.

A server's job, or an app's batch job, measures its own use once a minute
(``centre/job_usage.py``, inside the job) and reports a few minutes at a time to the hub with a key that names its owner.  That costs
the hub one small request per job every few minutes, where asking Slurm costs one ``sstat``
(and a round trip to the node's daemons) per job per minute.  The hub keeps one row per job
per minute at most and thins old rows out (:func:`downsample`).

Everything here is pure: the report's format and its checks (every field of a report is
hostile: it comes from a process the person controls), the key, and the downsampling.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Where a job reports, below the hub's API URL (``JUPYTERHUB_API_URL``).
REPORT_PATH = "corehour/job-samples"
# The variable that carries the job's key; the job environment and the sudo rule keep it.
KEY_VARIABLE = "COREHOUR_USAGE_KEY"
# The person's keys for every cluster of the site, space-separated: a server hands the one of
# the cluster it submits a batch job to on to that job, wherever the server itself runs.
KEYS_VARIABLE = "COREHOUR_USAGE_KEYS"
MAX_SAMPLES_PER_REPORT = 120
MAX_REPORT_BYTES = 64 * 1024
# A report may carry samples this old (a job that could not reach the hub for a while).
OLDEST_SAMPLE_S = 2 * 86400
LARGEST_JOB_ID = 2**32 - 1
LARGEST_CORES = 100_000
LARGEST_BYTES = 2**50  # a petabyte: no node has more memory or GPU memory than this

# (age, bucket): rows older than ``age`` seconds are merged into ``bucket``-second means.
# The last day keeps every minute; the week 10-minute means; three months hourly ones.
AGES = ((86_400, 600), (7 * 86_400, 3_600))
KEEP_S = 90 * 86_400


class ReportError(ValueError):
    """A report the hub refuses; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Sample:
    """One job's use over ``seconds`` seconds that started at ``t`` (epoch seconds)."""

    t: int
    seconds: int
    cpu_cores: float
    allocated_cores: int | None
    memory_bytes: int
    memory_limit_bytes: int | None
    gpu_percent: float | None = None
    gpu_memory_bytes: int | None = None

    def as_list(self) -> list:
        return [
            self.t,
            self.seconds,
            round(self.cpu_cores, 3),
            self.allocated_cores,
            self.memory_bytes,
            self.memory_limit_bytes,
            None if self.gpu_percent is None else round(self.gpu_percent, 1),
            self.gpu_memory_bytes,
        ]


FIELDS = (
    "t",
    "seconds",
    "cpu_cores",
    "allocated_cores",
    "memory_bytes",
    "memory_limit_bytes",
    "gpu_percent",
    "gpu_memory_bytes",
)


@dataclass(frozen=True)
class Report:
    job_id: int
    samples: tuple[Sample, ...]


# ---------------------------------------------------------------- the key


def report_key(secret: bytes, username: str, cluster: str) -> str:
    """The key a job of ``username`` on ``cluster`` shows; the hub recomputes it to check it,
    so it stores none.  The report's owner and cluster come from the key, never the body."""
    # NUL-separated: no cluster or name can shift into the other's part.
    mac = hmac.new(secret, f"job-samples\0{cluster}\0{username}".encode(), hashlib.sha256)
    return f"{cluster}/{username}.{mac.hexdigest()}"


def key_for_cluster(keys: str, cluster: str) -> str:
    """The key among ``keys`` (as in ``COREHOUR_USAGE_KEYS``) made for ``cluster``; "" if none."""
    return next((key for key in keys.split() if key.startswith(f"{cluster}/")), "")


def key_owner(secret: bytes, key: str) -> tuple[str, str] | None:
    """(username, cluster) of a key the hub made, else None."""
    owner, _, _ = key.rpartition(".")
    cluster, _, username = owner.partition("/")
    if not cluster or not username:
        return None
    if not hmac.compare_digest(report_key(secret, username, cluster).encode(), key.encode()):
        return None
    return username, cluster


# ---------------------------------------------------------------- the report


def parse_report(body: object, now: float) -> Report:
    """A checked report, or :class:`ReportError` naming the first bad field."""
    if not isinstance(body, Mapping):
        raise ReportError("the report must be a JSON object with job_id and samples")
    unknown = sorted(set(body) - {"job_id", "samples"})
    if unknown:
        raise ReportError(f"unknown field {unknown[0]!r:.40}: allowed are job_id and samples")
    job_id = _whole(body.get("job_id"), "job_id", 1, LARGEST_JOB_ID)
    samples = body.get("samples")
    if not isinstance(samples, list) or not 1 <= len(samples) <= MAX_SAMPLES_PER_REPORT:
        raise ReportError(f"samples: a list of 1 to {MAX_SAMPLES_PER_REPORT} samples")
    return Report(
        job_id=job_id,
        samples=tuple(_sample(row, i, now) for i, row in enumerate(samples)),
    )


def _sample(row: object, index: int, now: float) -> Sample:
    where = f"samples[{index}]"
    if not isinstance(row, list) or len(row) != len(FIELDS):
        raise ReportError(f"{where}: a list of {len(FIELDS)} values: {', '.join(FIELDS)}")
    values = dict(zip(FIELDS, row, strict=True))
    t = _whole(values["t"], f"{where}.t", int(now) - OLDEST_SAMPLE_S, int(now) + 60)
    return Sample(
        t=t,
        seconds=_whole(values["seconds"], f"{where}.seconds", 1, 3600),
        cpu_cores=_number(values["cpu_cores"], f"{where}.cpu_cores", LARGEST_CORES),
        allocated_cores=_optional_whole(
            values["allocated_cores"], f"{where}.allocated_cores", 1, LARGEST_CORES
        ),
        memory_bytes=_whole(values["memory_bytes"], f"{where}.memory_bytes", 0, LARGEST_BYTES),
        memory_limit_bytes=_optional_whole(
            values["memory_limit_bytes"], f"{where}.memory_limit_bytes", 1, LARGEST_BYTES
        ),
        gpu_percent=None
        if values["gpu_percent"] is None
        else _number(values["gpu_percent"], f"{where}.gpu_percent", 100.0),
        gpu_memory_bytes=_optional_whole(
            values["gpu_memory_bytes"], f"{where}.gpu_memory_bytes", 0, LARGEST_BYTES
        ),
    )


def _whole(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ReportError(f"{field}: a whole number from {low} to {high}, not {value!r:.40}")
    return value


def _optional_whole(value: object, field: str, low: int, high: int) -> int | None:
    return None if value is None else _whole(value, field, low, high)


def _number(value: object, field: str, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= high
    ):
        raise ReportError(f"{field}: a number from 0 to {high:g}, not {value!r:.40}")
    return float(value)


# ---------------------------------------------------------------- ageing


def minute_of(t: int) -> int:
    """The row a sample goes into: one per job per minute, however often it reports."""
    return t - t % 60


def downsample(samples: Iterable[Sample], now: float) -> list[Sample]:
    """The rows to keep: recent ones as they are, older ones merged into coarser means.

    Means are weighted by the seconds each row covers; a merged row's allocation is the
    largest seen, and its memory the largest (a peak matters more than a mean for memory).
    Rows older than :data:`KEEP_S` are dropped.
    """
    buckets: dict[int, list[Sample]] = {}
    kept: list[Sample] = []
    for sample in samples:
        age = now - sample.t
        if age > KEEP_S:
            continue
        bucket = _bucket(age)
        if bucket is None:
            kept.append(sample)
        else:
            buckets.setdefault(sample.t - sample.t % bucket, []).append(sample)
    kept.extend(_merge(start, rows) for start, rows in buckets.items())
    return sorted(kept, key=lambda sample: sample.t)


def _bucket(age: float) -> int | None:
    size = None
    for older_than, bucket in AGES:
        if age > older_than:
            size = bucket
    return size


def _merge(start: int, rows: list[Sample]) -> Sample:
    if len(rows) == 1 and rows[0].t == start:
        return rows[0]
    seconds = sum(row.seconds for row in rows)
    gpu_rows = [row for row in rows if row.gpu_percent is not None]
    gpu_seconds = sum(row.seconds for row in gpu_rows)
    return Sample(
        t=start,
        seconds=min(seconds, 3600),
        cpu_cores=sum(row.cpu_cores * row.seconds for row in rows) / seconds,
        allocated_cores=_largest(row.allocated_cores for row in rows),
        memory_bytes=max(row.memory_bytes for row in rows),
        memory_limit_bytes=_largest(row.memory_limit_bytes for row in rows),
        gpu_percent=(
            sum(row.gpu_percent * row.seconds for row in gpu_rows) / gpu_seconds
            if gpu_rows
            else None
        ),
        gpu_memory_bytes=_largest(row.gpu_memory_bytes for row in rows),
    )


def _largest(values: Iterable[int | None]) -> int | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def gpu_efficiency(samples: Iterable[Sample]) -> float | None:
    """The mean GPU utilisation (percent) over the samples that saw a GPU, or None."""
    rows = [sample for sample in samples if sample.gpu_percent is not None]
    seconds = sum(row.seconds for row in rows)
    if not seconds:
        return None
    return sum(row.gpu_percent * row.seconds for row in rows) / seconds


# ---------------------------------------------------------------- inside the job


def sample_since(
    previous: tuple[float, float],
    now: tuple[float, float],
    *,
    allocated_cores: int | None,
    memory_bytes: int,
    memory_limit_bytes: int | None,
    gpu_percents: Iterable[float] = (),
    gpu_memory_bytes: Iterable[int] = (),
) -> Sample | None:
    """The sample for the span between two (epoch seconds, job CPU seconds) readings.

    The CPU figure is the mean over the whole span, not the last instant; None for a span
    too short to mean anything or a CPU counter that went back (a restarted meter)."""
    (t0, cpu0), (t1, cpu1) = previous, now
    seconds = t1 - t0
    if seconds < 1 or cpu1 < cpu0:
        return None
    percents = list(gpu_percents)
    gpu_memory = list(gpu_memory_bytes)
    return Sample(
        t=int(t0),
        seconds=min(round(seconds), 3600),
        cpu_cores=min((cpu1 - cpu0) / seconds, LARGEST_CORES),
        allocated_cores=allocated_cores,
        memory_bytes=min(memory_bytes, LARGEST_BYTES),
        memory_limit_bytes=memory_limit_bytes,
        gpu_percent=sum(percents) / len(percents) if percents else None,
        gpu_memory_bytes=sum(gpu_memory) if gpu_memory else None,
    )
