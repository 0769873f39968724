"""Where a benchmark window's CPU went, read from /proc: seconds per kind of process.

A class start on shared cores is bound by CPU, so the question "why is one side faster" is
answered by where each side spends it.  Long-lived processes are read at both ends of the
window (a process born inside it counts from zero); what ran and ended inside the window
(sudo, sbatch, squeue, a job's shell) shows up only in the machine's total, and is
reported as the rest.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")

# First match wins; matched against the whole command line.
KINDS = (
    ("notebook servers", ("launch.py", "singleuser")),
    ("kernels", ("ipykernel",)),
    ("billing service", ("billing_hooks",)),
    ("hub", ("bin/jupyterhub",)),
    ("proxy", ("configurable-http-proxy",)),
    ("slurmstepd", ("slurmstepd",)),
    ("slurmctld", ("slurmctld",)),
    ("slurmd", ("slurmd",)),
    ("slurmdbd", ("slurmdbd",)),
    ("mariadb", ("mariadbd", "mysqld")),
)
REST = "ended inside the window, and others"


def kind_of(command_line: str) -> str | None:
    for kind, marks in KINDS:
        if any(mark in command_line for mark in marks):
            return kind
    return None


def busy_seconds(stat_text: str) -> float:
    """CPU seconds the machine spent not idle, from /proc/stat's first line."""
    fields = [int(v) for v in stat_text.splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICKS


def process_seconds(stat_text: str) -> float:
    """utime + stime of one /proc/<pid>/stat line (the name may hold spaces and brackets)."""
    after_name = stat_text.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / TICKS


def sample() -> tuple[float, dict[int, tuple[str, float]]]:
    processes = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            kind = kind_of(command_line)
            if kind is not None:
                processes[int(entry.name)] = (kind, process_seconds((entry / "stat").read_text()))
        except (OSError, IndexError, ValueError):
            continue  # it ended while being read
    return busy_seconds((PROC / "stat").read_text()), processes


def spent(before: tuple, after: tuple) -> dict[str, float]:
    """CPU seconds per kind between two samples, largest first, with the rest and the total."""
    busy_before, processes_before = before
    busy_after, processes_after = after
    by_kind: Counter[str] = Counter()
    for pid, (kind, seconds) in processes_after.items():
        previous = processes_before.get(pid)
        by_kind[kind] += seconds - (previous[1] if previous and previous[0] == kind else 0.0)
    total = busy_after - busy_before
    by_kind[REST] = max(0.0, total - sum(by_kind.values()))
    result = {kind: round(seconds, 2) for kind, seconds in by_kind.most_common() if seconds > 0}
    result["total"] = round(total, 2)
    return result
