"""What the phone status view shows, from what the hub already knows: pure, tested without a hub.

Jobs come from the spawners' shared ``squeue`` answer (one per cluster, however many people
look), so a phone that refreshes every few seconds costs Slurm nothing more.  A job that is one
of the person's notebook servers is shown as that server.  Costs are at the site's standard
rates times the account's price multiplier, the same arithmetic as the meter's; the ledger's
bill is the billing service's.  The burn rate is what the running jobs cost an hour, and the
balance runs out when the available credits are spent at that rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from centre.pricing import NoRateError, RateBook, Tres, format_credits, hourly_price_mc
from centre.slurm_json import JobInfo, alloc_counts, queue_position


@dataclass(frozen=True)
class Server:
    name: str  # "" for the default server
    cluster: str
    job_id: str
    url: str


@dataclass(frozen=True)
class Account:
    name: str
    label: str
    available_mc: int
    multiplier: Decimal


@dataclass(frozen=True)
class PhoneLedger:
    """What the ledger tells the phone view: accounts, and the latest notifications."""

    accounts: list[Account]
    notifications: list[dict]


def job_rows(
    person: str,
    queues: Mapping[str, Mapping[str, JobInfo]],
    servers: Iterable[Server],
    accounts: Mapping[str, Account],
    rates: RateBook | None,
    now: int,
) -> list[dict]:
    """The person's jobs Slurm holds now, running first, then queued, then just ended."""
    by_job = {(s.cluster, s.job_id): s for s in servers}
    rows = []
    for cluster, jobs in queues.items():
        for job in jobs.values():
            if job.user != person:
                continue
            server = by_job.get((cluster, job.job_id))
            rows.append(_row(cluster, job, jobs, server, accounts.get(job.account), rates, now))
    order = {"running": 0, "queued": 1, "ended": 2}
    return sorted(rows, key=lambda r: (order[r["phase"]], -r["submitted"]))


def _row(cluster, job, jobs, server, account, rates, now) -> dict:
    running = job.running and job.start_time is not None
    phase = "running" if running else ("queued" if job.pending else "ended")
    elapsed = max(0, now - job.start_time) if running else 0
    per_hour = _per_hour(cluster, job, account, rates, now)
    return {
        "kind": "server" if server else "batch",
        "server": server.name if server else None,
        "url": server.url if server else None,
        "cluster": cluster,
        "job_id": job.job_id,
        "name": job.name,
        "state": job.state,
        "phase": phase,
        "reason": "" if job.reason == "None" else job.reason,
        "queue_position": queue_position(job.job_id, jobs.values()) if job.pending else None,
        "expected_start": job.start_time if job.pending else None,
        "submitted": job.submit_time or 0,
        "elapsed_s": elapsed,
        "account": job.account,
        "per_hour_mc": per_hour,
        "per_hour": format_credits(per_hour) if per_hour is not None else None,
        "cost_so_far": format_credits(per_hour * elapsed // 3600) if per_hour is not None else None,
    }


def _per_hour(cluster, job, account, rates, now) -> int | None:
    if rates is None:
        return None
    try:
        price = rates.price_at(cluster, job.partition, job.start_time or now)
    except NoRateError:
        return None
    multiplier = account.multiplier if account else Decimal(1)
    return hourly_price_mc(price, Tres(*alloc_counts(job.tres_alloc)), multiplier)


def account_rows(accounts: Iterable[Account], jobs: list[dict], now: int) -> list[dict]:
    """Each account's available credits, what its running jobs burn an hour, and when it runs
    out at that rate (None when nothing runs)."""
    rows = []
    for account in accounts:
        burn = sum(
            j["per_hour_mc"] or 0
            for j in jobs
            if j["phase"] == "running" and j["account"] == account.name
        )
        runs_out = None
        if burn > 0:
            runs_out = now + max(0, account.available_mc) * 3600 // burn
        rows.append(
            {
                "name": account.name,
                "label": account.label,
                "available": format_credits(account.available_mc),
                "burn_per_hour": format_credits(burn),
                "runs_out_at": runs_out,
            }
        )
    return rows
