"""One job's bill: its charge rows added up, for the person who ran it (the public API's
``jobs/{cluster}/{id}/bill``).

A job's charges accrue while it runs, in intervals (meter.py); its bill is final once the
meter has settled the last interval at Slurm's end time.  Slurm numbers can repeat after a
cluster is rebuilt, so the latest start of that number wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from billing_hooks.models import Account, Charge, MeteredJob


@dataclass(frozen=True)
class JobBill:
    account: str
    partition: str
    job_name: str
    cpus: int
    gpus: int
    start: int
    charged_until: int
    cpu_seconds: int
    gpu_seconds: int
    amount_mc: int
    intervals: int
    final: bool


def job_bill(session: Session, username: str, cluster: str, job_id: str) -> JobBill | None:
    """``username``'s bill for ``job_id`` on ``cluster``; None when the ledger has no charge of
    theirs for it (not yet metered, someone else's, or never run)."""
    open_rows = func.sum(case((Charge.closed.is_(False), 1), else_=0))
    row = session.execute(
        select(
            Account.name,
            func.min(Charge.partition),
            func.max(Charge.job_name),
            func.max(Charge.cpus),
            func.max(Charge.gpus),
            Charge.job_start,
            func.max(Charge.interval_end),
            func.sum(Charge.cpu_seconds),
            func.sum(Charge.gpu_seconds),
            func.sum(Charge.amount_mc),
            func.count(Charge.id),
            open_rows,
        )
        .join(Account, Account.id == Charge.account_id)
        .where(Charge.username == username, Charge.cluster == cluster, Charge.job_id == job_id)
        .group_by(Charge.job_start, Account.name)
        .order_by(Charge.job_start.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    account, partition, name, cpus, gpus, start, until, cpu_s, gpu_s, amount, count, still_open = (
        row
    )
    finished = session.scalar(
        select(MeteredJob.finished).where(
            MeteredJob.cluster == cluster,
            MeteredJob.job_id == job_id,
            MeteredJob.job_start == start,
        )
    )
    return JobBill(
        account=account,
        partition=partition,
        job_name=name,
        cpus=int(cpus),
        gpus=int(gpus),
        start=int(start),
        charged_until=int(until),
        cpu_seconds=int(cpu_s),
        gpu_seconds=int(gpu_s),
        amount_mc=int(amount),
        intervals=int(count),
        # A job the meter no longer tracks is settled when none of its rows is open.
        final=bool(finished) if finished is not None else not still_open,
    )
