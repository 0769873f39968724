"""What a running Slurm job uses of what it was given: cores, memory and GPUs, read inside the job.

A job's own numbers come from its cgroup where Slurm gives it one (``task/cgroup``: the
``job_<id>`` folder holds every step's processes, so a kernel and the batch script count
together).  Where Slurm tracks a job only by its processes (``proctrack/linuxproc``, as in the
demo clusters, which run without writable cgroups), they come from the server's process tree,
which is the same set of processes there.  What the job was given comes from the variables
Slurm sets in every job.  GPUs are read through NVML, only those the job was given.

The parsing is pure (strings in, numbers out); ``UsageMeter`` is the thin shell that reads files
and keeps the previous CPU reading, because a rate needs two.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
HISTORY_STEP_SECONDS = 55
HISTORY_LENGTH = 70
_JOB_FOLDER = re.compile(r"job_(\d+)")


@dataclass(frozen=True)
class Allocation:
    """What Slurm gave the job on this node."""

    cores: int | None
    memory_bytes: int | None
    gpus: tuple[str, ...] | None  # None: the job was given no GPU


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    utilization_percent: int
    memory_used_bytes: int
    memory_total_bytes: int


@dataclass(frozen=True)
class Reading:
    """One answer to "what does this job use now?", as the status bar and the apps show it."""

    used_cores: float | None
    allocated_cores: int | None
    memory_used_bytes: int
    memory_limit_bytes: int | None
    gpus: list[GpuReading] = field(default_factory=list)
    gpu_note: str = ""
    source: str = "processes"
    idle_notice: str = ""
    # The job's CPU seconds so far, for rates over longer spans (the minute samples).
    cpu_seconds: float = 0.0

    def as_json(self) -> dict:
        return {
            "cpu": {"used_cores": self.used_cores, "allocated_cores": self.allocated_cores},
            "memory": {
                "used_bytes": self.memory_used_bytes,
                "limit_bytes": self.memory_limit_bytes,
            },
            "gpus": [asdict(gpu) for gpu in self.gpus],
            "gpu_note": self.gpu_note,
            "source": self.source,
            "idle_notice": self.idle_notice,
        }


# ---------------------------------------------------------------- pure parsing


def allocation_from_environment(environ: Mapping[str, str]) -> Allocation:
    """Cores, memory and GPUs from the variables Slurm sets in the job.

    SLURM_MEM_PER_NODE is in MiB; with --mem-per-cpu Slurm sets SLURM_MEM_PER_CPU instead.
    GPUs: Slurm's own list first (SLURM_JOB_GPUS, node-local indices), then CUDA's.
    """
    cores = _positive_int(environ.get("SLURM_CPUS_ON_NODE"))
    memory_mib = _positive_int(environ.get("SLURM_MEM_PER_NODE"))
    per_cpu_mib = _positive_int(environ.get("SLURM_MEM_PER_CPU"))
    if memory_mib is None and per_cpu_mib is not None and cores is not None:
        memory_mib = per_cpu_mib * cores
    gpus = None
    for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES"):
        listed = tuple(g.strip() for g in environ.get(name, "").split(",") if g.strip())
        if listed and listed != ("NoDevFiles",):
            gpus = listed
            break
    return Allocation(
        cores=cores, memory_bytes=memory_mib * 1024 * 1024 if memory_mib else None, gpus=gpus
    )


def job_cgroup(proc_self_cgroup: str, job_id: str) -> tuple[str, str] | None:
    """("v2" | "v1", the job folder's path below the hierarchy) from /proc/self/cgroup's text.

    Slurm puts a job's steps in ``.../job_<id>/step_<n>/...``; the job folder counts all of
    them.  A line that names another job or none is not this job's cgroup.
    """
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        segments = path.strip("/").split("/")
        for depth, segment in enumerate(segments):
            match = _JOB_FOLDER.fullmatch(segment)
            if match and match.group(1) == job_id:
                job_path = "/".join(segments[: depth + 1])
                if hierarchy == "0" and controllers == "":
                    return "v2", job_path
                if "memory" in controllers.split(","):
                    return "v1", job_path
    return None


def cpu_seconds_from_cpu_stat(text: str) -> float:
    """cgroup v2 ``cpu.stat``: usage_usec is user + system time of every process, ever."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1_000_000
    raise ValueError("cpu.stat has no usage_usec line")


def memory_limit(text: str) -> int | None:
    """``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1); "max" or a huge v1 value: none."""
    value = text.strip()
    if value == "max":
        return None
    number = int(value)
    return None if number >= 2**60 else number


def cores_in_cpuset(text: str) -> int | None:
    """``cpuset.cpus.effective``: "0-3,8,10-11" is 7 cores."""
    count = 0
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count or None


def used_cores(previous: tuple[float, float] | None, now: tuple[float, float]) -> float | None:
    """Cores in use between two (cpu_seconds, monotonic_seconds) readings; None for the first."""
    if previous is None:
        return None
    elapsed = now[1] - previous[1]
    if elapsed <= 0:
        return None
    return round(max(0.0, now[0] - previous[0]) / elapsed, 2)


IDLE_WINDOW_SECONDS = 3600
IDLE_SHARE = 0.10


def idle_notice(history: Sequence[tuple[float, float]], allocated: int | None) -> str:
    """A nudge when the job used under 10 % of its cores over the last full hour.

    ``history``: (monotonic seconds, CPU seconds) readings, oldest first, one a minute or so.
    """
    if not allocated or len(history) < 2:
        return ""
    now_t, now_cpu = history[-1]
    older = [(t, cpu) for t, cpu in history if now_t - t >= IDLE_WINDOW_SECONDS]
    if not older:
        return ""  # not an hour of readings yet
    then_t, then_cpu = older[-1]
    average = max(0.0, now_cpu - then_cpu) / (now_t - then_t)
    if average >= IDLE_SHARE * allocated:
        return ""
    smaller = max(1, math.ceil(average * 2))
    advice = (
        f" {smaller} core{'s' if smaller != 1 else ''} would do for work like this."
        if smaller < allocated
        else ""
    )
    return (
        f"In the last hour this server used {average:.2f} of its {allocated} cores on average "
        f"(under {IDLE_SHARE:.0%}), and every core costs the same busy or idle. Stop it when "
        f"you are done, or start it smaller next time.{advice}"
    )


def idle_gpu_notice(history: Sequence[tuple[float, float]]) -> str:
    """A nudge when the job's GPUs were under 10 % busy over the last full hour.

    ``history``: (monotonic seconds, mean utilisation % of the job's GPUs), oldest first, one a
    minute or so; NVML's utilisation is a share of recent time, so the mean of the readings is
    the hour's.
    """
    if len(history) < 2 or history[-1][0] - history[0][0] < IDLE_WINDOW_SECONDS:
        return ""
    now_t = history[-1][0]
    hour = [util for t, util in history if now_t - t <= IDLE_WINDOW_SECONDS]
    average = sum(hour) / len(hour)
    if average >= IDLE_SHARE * 100:
        return ""
    return (
        f"In the last hour this server's GPUs were {average:.0f} % busy on average (under "
        f"{IDLE_SHARE:.0%}), and a GPU costs the same busy or idle. Stop the server when you are "
        "done, or start a CPU profile for work that does not need one."
    )


def visible_gpu_indices(allocated: tuple[str, ...], uuids_by_index: Mapping[int, str]) -> list[int]:
    """The node's GPU indices that the job was given, named either by index or by UUID."""
    wanted = set(allocated)
    return [
        index
        for index, uuid in sorted(uuids_by_index.items())
        if str(index) in wanted or uuid in wanted
    ]


# ---------------------------------------------------------------- the shell


def read_gpus(allocated: tuple[str, ...] | None, nvml=None) -> tuple[list[GpuReading], str]:
    """The job's GPUs through NVML, or none and a sentence saying why."""
    if not allocated:
        return [], "No GPU in this job"
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return [], "GPU use unavailable: nvidia-ml-py is not installed in this image"
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        return [], f"GPU use unavailable: NVML could not start ({e})"
    try:
        handles = {
            index: nvml.nvmlDeviceGetHandleByIndex(index)
            for index in range(nvml.nvmlDeviceGetCount())
        }
        uuids = {index: _text(nvml.nvmlDeviceGetUUID(h)) for index, h in handles.items()}
        readings = []
        for index in visible_gpu_indices(allocated, uuids):
            handle = handles[index]
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            readings.append(
                GpuReading(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    utilization_percent=int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                    memory_used_bytes=int(memory.used),
                    memory_total_bytes=int(memory.total),
                )
            )
    except nvml.NVMLError as e:
        return [], f"GPU use unavailable: NVML could not read the GPUs ({e})"
    finally:
        nvml.nvmlShutdown()
    if not readings:
        return (
            [],
            f"GPU use unavailable: NVML sees none of this job's GPUs ({', '.join(allocated)})",
        )
    return readings, ""


class UsageMeter:
    """Reads the job's use; keep one per server, since each CPU rate needs the reading before."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        cgroup_root: Path = CGROUP_ROOT,
        proc_self_cgroup: Path = Path("/proc/self/cgroup"),
        clock: Callable[[], float] = time.monotonic,
        nvml=None,
        tree_root: int | None = None,
    ):
        """``tree_root``: the process whose tree is the job where no cgroup of the job shows
        (Slurm's proctrack/linuxproc): this process for a server, the batch script's shell
        for a reporter it started."""
        self.environ = dict(os.environ if environ is None else environ)
        self.tree_root = os.getpid() if tree_root is None else tree_root
        self.allocation = allocation_from_environment(self.environ)
        self.clock = clock
        self.nvml = nvml
        self._previous: tuple[float, float] | None = None
        self._last: Reading | None = None
        # (monotonic, CPU seconds) about once a minute, for the last hour and a bit
        self._history: deque[tuple[float, float]] = deque(maxlen=HISTORY_LENGTH)
        self._gpu_history: deque[tuple[float, float]] = deque(maxlen=HISTORY_LENGTH)
        self._lock = threading.Lock()
        self._cgroup = self._find_cgroup(cgroup_root, proc_self_cgroup)

    def _find_cgroup(self, root: Path, proc_self_cgroup: Path) -> tuple[str, Path, str] | None:
        job_id = self.environ.get("SLURM_JOB_ID", "")
        try:
            found = job_cgroup(proc_self_cgroup.read_text(), job_id) if job_id else None
        except OSError:
            return None
        if found is None:
            return None
        version, job_path = found
        folder = root / job_path if version == "v2" else root / "memory" / job_path
        return (version, root, job_path) if folder.is_dir() else None

    # Several open tabs poll at once; a rate over a few milliseconds would be noise.
    SHORTEST_INTERVAL = 1.0

    def read(self) -> Reading:
        """A reading now; safe from several threads (the page and the minute's sample)."""
        with self._lock:
            return self._read()

    def _read(self) -> Reading:
        if (
            self._last is not None
            and self._previous is not None
            and self.clock() - self._previous[1] < self.SHORTEST_INTERVAL
        ):
            return self._last
        if self._cgroup is not None:
            cpu_seconds, memory_used, limit, cpuset_cores = self._read_cgroup(*self._cgroup)
            source = "cgroup"
        else:
            cpu_seconds, memory_used = _process_tree_use(self.tree_root)
            limit, cpuset_cores, source = None, None, "processes"
        now = (cpu_seconds, self.clock())
        rate = used_cores(self._previous, now)
        self._previous = now
        if not self._history or now[1] - self._history[-1][0] >= HISTORY_STEP_SECONDS:
            self._history.append((now[1], now[0]))
        allocated = self.allocation.cores or cpuset_cores
        gpus, note = read_gpus(self.allocation.gpus, self.nvml)
        if gpus and (
            not self._gpu_history or now[1] - self._gpu_history[-1][0] >= HISTORY_STEP_SECONDS
        ):
            mean = sum(g.utilization_percent for g in gpus) / len(gpus)
            self._gpu_history.append((now[1], mean))
        notices = (
            idle_notice([*self._history, (now[1], now[0])], allocated),
            idle_gpu_notice(self._gpu_history),
        )
        self._last = Reading(
            used_cores=rate,
            allocated_cores=allocated,
            memory_used_bytes=memory_used,
            memory_limit_bytes=limit or self.allocation.memory_bytes,
            gpus=gpus,
            gpu_note=note,
            source=source,
            idle_notice=" ".join(notice for notice in notices if notice),
            cpu_seconds=cpu_seconds,
        )
        return self._last

    @staticmethod
    def _read_cgroup(
        version: str, root: Path, job_path: str
    ) -> tuple[float, int, int | None, int | None]:
        """CPU seconds, memory in use, the memory limit and the cpuset's cores of the job."""
        if version == "v2":
            folder = root / job_path
            cpu = cpu_seconds_from_cpu_stat((folder / "cpu.stat").read_text())
            memory = int((folder / "memory.current").read_text())
            limit = memory_limit((folder / "memory.max").read_text())
            cpuset = folder / "cpuset.cpus.effective"
            cores = cores_in_cpuset(cpuset.read_text()) if cpuset.exists() else None
            return cpu, memory, limit, cores
        # v1: one hierarchy per controller, the job at the same path in each.
        memory_folder = root / "memory" / job_path
        cpuacct = root / "cpuacct" / job_path / "cpuacct.usage"
        cpu = int(cpuacct.read_text()) / 1e9 if cpuacct.exists() else 0.0
        memory = int((memory_folder / "memory.usage_in_bytes").read_text())
        limit = memory_limit((memory_folder / "memory.limit_in_bytes").read_text())
        return cpu, memory, limit, None


def _process_tree_use(pid: int) -> tuple[float, int]:
    """CPU seconds and resident memory of a process and everything below it.

    Read straight from /proc: each process's ``stat`` and its threads' ``children`` lists,
    so the cost grows with the job's own processes, not with every process on the node (a
    full scan, as ``psutil.Process.children`` does, costs milliseconds on a busy node, once a
    minute in every job).  Kernels without the ``children`` files fall back to psutil.
    """
    if not os.path.exists(f"/proc/{pid}/task/{pid}/children"):
        return _process_tree_use_psutil(pid)
    cpu, memory = 0.0, 0
    pending, seen = [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue  # a number reused while the tree was read
        seen.add(current)
        try:
            with open(f"/proc/{current}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        cpu += sum(int(value) for value in fields[11:15]) / _TICKS  # utime stime cutime cstime
        memory += int(fields[21]) * _PAGE  # rss, in pages
        pending.extend(child_pids(current))
    return cpu, memory


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def child_pids(pid: int) -> list[int]:
    """The processes ``pid``'s threads started, from /proc (none once it has ended)."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as f:
                found.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return found


def _process_tree_use_psutil(pid: int) -> tuple[float, int]:
    import psutil  # in every image (jupyter-resource-usage needs it); not in the hub's path

    root = psutil.Process(pid)
    cpu, memory = 0.0, 0
    for process in [root, *root.children(recursive=True)]:
        try:
            with process.oneshot():
                times = process.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
                memory += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return cpu, memory


def _positive_int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value > 0 else None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
