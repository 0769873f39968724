"""The words of a notification: pure, so every channel says the same and tests need no mail.

Slurm's own ``--mail-type`` mails have an empty body.  corehour's say what ran, where, how
long, how well it used what it was given, what it cost, and end with the tail of its output,
so a person can tell from the mail alone whether to look further.
"""

from __future__ import annotations

from dataclasses import dataclass

# Slurm's end states in words a person reads first.
ENDINGS = {
    "COMPLETED": "finished",
    "FAILED": "failed",
    "CANCELLED": "was cancelled",
    "TIMEOUT": "ran out of time",
    "OUT_OF_MEMORY": "ran out of memory",
    "NODE_FAIL": "lost its node",
    "PREEMPTED": "was preempted",
}
TAIL_LINES = 20


@dataclass(frozen=True)
class EndedJob:
    cluster: str
    job_id: str
    name: str
    user: str
    state: str
    exit_code: int | None
    elapsed_s: int
    cores: int
    cpu_seconds: float | None  # what its processes used; None where Slurm did not measure
    cost: str | None  # credits, exact; None where the site bills nothing
    currency: str = "credits"
    final: bool = True  # the ledger has settled the job's last interval
    output_path: str = ""
    output_tail: str = ""
    usage_url: str = ""
    asked: bool = False  # the job asked for mail itself (sbatch --mail-type)


@dataclass(frozen=True)
class Message:
    event: str
    subject: str
    body: str


def duration(seconds: int) -> str:
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def cpu_efficiency(job: EndedJob) -> float | None:
    """The share of the cores' time the job's processes used, 0–100 %."""
    if job.cpu_seconds is None or job.elapsed_s <= 0 or job.cores <= 0:
        return None
    return min(100.0, 100.0 * job.cpu_seconds / (job.elapsed_s * job.cores))


def job_ended(job: EndedJob) -> Message:
    ending = ENDINGS.get(job.state, job.state.lower())
    event = "job_ended" if job.state == "COMPLETED" else "job_failed"
    subject = f"Job {job.job_id} ({job.name}) on {job.cluster} {ending}"
    if job.cost is not None:
        subject += f": {job.cost} {job.currency}"
    lines = [
        f"Your job {job.job_id} ({job.name}) on {job.cluster} {ending}"
        + (f" with exit code {job.exit_code}." if job.exit_code else "."),
        "",
        f"Ran for:     {duration(job.elapsed_s)} on {job.cores} core{'s' if job.cores != 1 else ''}",
    ]
    efficiency = cpu_efficiency(job)
    if efficiency is None:
        lines.append("Efficiency:  not measured (Slurm recorded no CPU time for it)")
    else:
        idle = job.cores * (1 - efficiency / 100)
        lines.append(
            f"Efficiency:  {efficiency:.0f} % of its CPU time used ({idle:.1f} cores idle on average)"
        )
    if job.cost is not None:
        settled = "" if job.final else " so far (the final bill follows within a minute)"
        lines.append(f"Cost:        {job.cost} {job.currency}{settled}")
    if efficiency is not None and efficiency < 50 and job.cores > 1:
        lines += [
            "",
            f"Next time: ask for fewer cores; it used about {max(1, round(job.cores * efficiency / 100))}.",
        ]
    if job.output_path:
        lines += ["", f"Output:      {job.output_path}"]
    if job.output_tail:
        tail = job.output_tail.splitlines()[-TAIL_LINES:]
        lines += [f"Its last {len(tail)} lines:", "", *(f"    {line}" for line in tail)]
    if job.usage_url:
        lines += ["", f"Bills and usage: {job.usage_url}"]
    why = (
        "mailed because the job asked for it (sbatch --mail-type)."
        if job.asked
        else "mailed when a batch job of yours ends; a notebook server's end is listed on /m."
    )
    lines += ["", "-- ", f"corehour: {why}"]
    return Message(event, subject, "\n".join(lines) + "\n")
