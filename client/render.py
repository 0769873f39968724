"""The API's replies as text for people.  Pure: a reply in, lines out."""

from __future__ import annotations

import time
from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns as wide as their widest cell, two spaces apart."""
    cells = [list(headers)] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def cpu_percent(job: dict) -> str:
    efficiency = job.get("efficiency")
    percent = efficiency.get("cpu_percent") if isinstance(efficiency, dict) else None
    return "" if percent is None else f"{percent:g}%"


def jobs_text(reply: dict) -> str:
    jobs = reply.get("jobs") or []
    if not jobs:
        return "no jobs in the last week"
    rows = [
        (
            j.get("cluster"),
            j.get("job_id"),
            j.get("name"),
            j.get("state"),
            j.get("elapsed"),
            j.get("cores"),
            cpu_percent(j),
        )
        for j in jobs
    ]
    return table(("CLUSTER", "JOB ID", "NAME", "STATE", "ELAPSED", "CORES", "CPU"), rows)


def balance_text(reply: dict) -> str:
    accounts = reply.get("accounts") or []
    if not accounts:
        return "you have no accounts yet"
    rows = [
        (
            a.get("name"),
            a.get("display_name"),
            a.get("available"),
            a.get("balance"),
            a.get("credit_limit"),
            a.get("status"),
        )
        for a in accounts
    ]
    lines = [table(("ACCOUNT", "NAME", "AVAILABLE", "BALANCE", "CREDIT LIMIT", "STATUS"), rows)]
    lines += [f"{n.get('level', 'notice')}: {n.get('message')}" for n in reply.get("notices") or []]
    return "\n".join(lines)


def bill_text(bill: dict) -> str:
    currency = bill.get("currency") or ""
    settled = "final" if bill.get("final") else "so far"
    amount = " ".join(str(v) for v in (bill.get("amount"), currency) if v)
    return labelled(
        [
            ("job", f"{bill.get('job_name', '')} ({bill.get('cluster')}/{bill.get('job_id')})"),
            ("account", bill.get("account")),
            ("core-hours", bill.get("core_hours")),
            ("GPU-hours", bill.get("gpu_hours")),
            ("amount", f"{amount} ({settled})"),
        ]
    )


def labelled(pairs: Sequence[tuple[str, object]]) -> str:
    width = max(len(label) for label, _ in pairs)
    return "\n".join(f"{label.ljust(width)}  {'' if v is None else v}" for label, v in pairs)


def duration(seconds: int) -> str:
    hours, rest = divmod(max(0, int(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def moment(epoch: int, now: float) -> str:
    """A time of day, with its date when it is not today."""
    when, today = time.localtime(epoch), time.localtime(now)
    same_day = when[:3] == today[:3]
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", when)


def job_state(job: dict, now: float) -> str:
    """Where a job stands: its state, and why it waits, when it starts, or how it ended."""
    state = job.get("state", "UNKNOWN")
    parts = [f"{state} ({job['reason']})" if job.get("reason") else state]
    if job.get("ended"):
        if job.get("exit_code") is not None:
            parts.append(f"exit code {job['exit_code']}")
    elif state == "PENDING":
        if job.get("queue_position"):
            parts.append(f"position {job['queue_position']}")
        if job.get("start"):
            parts.append(f"expected start {moment(job['start'], now)}")
    elif state == "RUNNING":
        where = f"partition {job['partition']} of " if job.get("partition") else ""
        parts[0] += f" on {where}{job.get('cluster', '')}".rstrip()
        parts.append(f"elapsed {duration(job.get('elapsed_s', 0))}")
    return ", ".join(parts)


def change_key(job: dict) -> tuple:
    """What has to change for a follower to print a new line."""
    return job.get("state"), job.get("reason"), job.get("queue_position"), job.get("ended")
