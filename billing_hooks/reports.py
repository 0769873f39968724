"""Read-only questions about the ledger, each one SQL query: running costs, spend, usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from billing_hooks.models import Account, Charge, MeteredJob, Transaction

DAY = 86400
GROUPINGS = {
    "account": Account.name,
    "user": Charge.username,
    "cluster": Charge.cluster,
    "partition": Charge.cluster + literal("/") + Charge.partition,
}


@dataclass(frozen=True)
class RunningJob:
    cluster: str
    job_id: str
    partition: str
    account: str
    username: str
    start: int
    charged_until: int
    cost_mc: int
    cpus: int
    gpus: int


def running_jobs(
    session: Session, account_ids: Sequence[int], username: str | None = None
) -> list[RunningJob]:
    """Jobs still metered in ``account_ids`` (of ``username`` only, when given), with what
    they have cost so far.

    The running jobs are found first (index ix_metered_job_account_running); only their own
    charge rows are then summed (index ix_charge_job), so the cost of a call follows the
    caller's running jobs, never the size of the charge table.
    """
    query = (
        select(
            MeteredJob,
            Account.name,
            func.sum(Charge.amount_mc),
            func.max(Charge.cpus),
            func.max(Charge.gpus),
        )
        .join(Account, Account.id == MeteredJob.account_id)
        .join(
            Charge,
            (Charge.cluster == MeteredJob.cluster)
            & (Charge.job_id == MeteredJob.job_id)
            & (Charge.job_start == MeteredJob.job_start),
        )
        .where(MeteredJob.account_id.in_(account_ids), MeteredJob.finished.is_(False))
        .group_by(MeteredJob.id, Account.id)
        .order_by(MeteredJob.job_start)
    )
    if username is not None:
        query = query.where(MeteredJob.username == username)
    return [
        RunningJob(
            cluster=job.cluster,
            job_id=job.job_id,
            partition=job.partition,
            account=name,
            username=job.username,
            start=job.job_start,
            charged_until=job.charged_until,
            cost_mc=int(cost_mc or 0),
            cpus=int(cpus or 0),
            gpus=int(gpus or 0),
        )
        for job, name, cost_mc, cpus, gpus in session.execute(query)
    ]


def daily_spend(
    session: Session, account_ids: Sequence[int], start: int, end: int, username: str | None = None
) -> list[tuple[int, int]]:
    """(day start, milli-credits) for each day in [start, end) with charges."""
    day = (Charge.interval_start - Charge.interval_start % DAY).label("day")
    query = (
        select(day, func.sum(Charge.amount_mc))
        .where(
            Charge.account_id.in_(account_ids),
            Charge.interval_start >= start,
            Charge.interval_start < end,
        )
        .group_by(day)
        .order_by(day)
    )
    if username is not None:
        query = query.where(Charge.username == username)
    return [(int(d), int(mc)) for d, mc in session.execute(query)]


@dataclass(frozen=True)
class UsageRow:
    key: str
    jobs: int
    cpu_seconds: int
    gpu_seconds: int
    amount_mc: int


def usage(session: Session, start: int, end: int, group_by: str) -> list[UsageRow]:
    """Charges in [start, end) grouped by account, user, cluster or partition (admins)."""
    key = GROUPINGS[group_by].label("key")
    jobs = func.count(func.distinct(Charge.cluster + literal(":") + Charge.job_id))
    query = (
        select(
            key,
            jobs,
            func.sum(Charge.cpu_seconds),
            func.sum(Charge.gpu_seconds),
            func.sum(Charge.amount_mc),
        )
        .join(Account, Account.id == Charge.account_id)
        .where(Charge.interval_start >= start, Charge.interval_start < end)
        .group_by(key)
        .order_by(func.sum(Charge.amount_mc).desc())
    )
    return [
        UsageRow(str(k), int(n), int(cpu or 0), int(gpu or 0), int(mc or 0))
        for k, n, cpu, gpu, mc in session.execute(query)
    ]


def audit_trail(
    session: Session, limit: int = 200, account_id: int | None = None
) -> list[tuple[Transaction, str]]:
    query = (
        select(Transaction, Account.name)
        .join(Account, Account.id == Transaction.account_id)
        .order_by(Transaction.id.desc())
        .limit(limit)
    )
    if account_id is not None:
        query = query.where(Transaction.account_id == account_id)
    return list(session.execute(query).tuples())
