"""The metering cycle: read each cluster once, charge every job of portal users, in bulk.

Per cycle and cluster there is one ``squeue --json`` (what runs now) and one
``sacct --json`` over the window since the last complete read (what ended, with Slurm's
exact end times).  The charges, the jobs' progress, the balances and the sacct cursors are
written in one database transaction: a meter killed at any point leaves the ledger as it
was after the previous cycle, and the next cycle charges from there, so no second is lost
or charged twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Row, select, text, tuple_
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks import bulk
from billing_hooks.ledger import insert_for, personal_account_name
from billing_hooks.metering import Booking, Progress, plan_job
from billing_hooks.models import Account, MeterCursor, MeteredJob
from billing_hooks.usage import RUN_ENDED_STATES, JobUsage, parse_sacct, parse_squeue
from centre.pricing import NoRateError, RateBook
from centre.site import Site
from centre.slurm_cli import CommandResult, accounting_argv, cluster_argv, run_command
from centre.slurm_json import SlurmOutputError

log = logging.getLogger("corehour.meter")

# sacct windows overlap by this much, so a job that slurmdbd recorded a little late is
# still seen; charging is idempotent, so reading a job twice costs nothing.
SACCT_OVERLAP = 300
# Without a cursor (a new ledger) the meter looks back this far for finished jobs.
FIRST_LOOKBACK = 24 * 3600
# One sacct read covers at most this much time.  After an outage the window would otherwise
# grow without end, until one read no longer finishes within slurm_timeout and the meter
# never catches up; bounded, each cycle reads the next slice until it reaches now.
SACCT_MAX_WINDOW = 6 * 3600
CHUNK = 500
METER_LOCK = 0x636F7265  # pg_advisory_xact_lock key of the metering cycle

Runner = Callable[..., Awaitable[CommandResult]]


@dataclass
class ClusterReading:
    cluster: str
    running: list[JobUsage] | None = None
    accounted: list[JobUsage] | None = None
    sacct_until: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class CycleReport:
    now: int
    jobs_charged: int = 0
    rows_written: int = 0
    charged_mc: int = 0
    accounts_touched: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


class Meter:
    def __init__(
        self,
        site: Site,
        sessions: sessionmaker[Session],
        rates: RateBook,
        run: Runner = run_command,
        clock: Callable[[], float] = time.time,
        slurm_timeout: float = 60.0,
    ):
        self.site = site
        self.sessions = sessions
        self.rates = rates
        self.run = run
        self.clock = clock
        self.slurm_timeout = slurm_timeout

    async def cycle(self) -> CycleReport:
        now = int(self.clock())
        cursors = await asyncio.to_thread(self._cursors)
        readings = await asyncio.gather(
            *(self.read_cluster(name, cursors.get(name), now) for name in self.site.clusters)
        )
        report = await asyncio.to_thread(self.apply, readings, now)
        for error in report.errors:
            log.warning("meter: %s", error)
        return report

    def _cursors(self) -> dict[str, int]:
        with self.sessions() as session:
            return dict(session.execute(select(MeterCursor.cluster, MeterCursor.sacct_until)).all())

    async def read_cluster(self, name: str, cursor: int | None, now: int) -> ClusterReading:
        cluster = self.site.clusters[name]
        since = (cursor - SACCT_OVERLAP) if cursor else now - FIRST_LOOKBACK
        until = min(now, since + SACCT_MAX_WINDOW)
        reading = ClusterReading(name, sacct_until=until)
        squeue, sacct = await asyncio.gather(
            self.run(cluster_argv(cluster, ["squeue", "--json"]), timeout=self.slurm_timeout),
            self.run(
                accounting_argv(
                    name,
                    cluster,
                    [
                        "sacct",
                        "--json",
                        "--allusers",
                        # Every run of a requeued or preempted job, not only its last one:
                        # each run was allocated, and is billed up to its own end.
                        "--duplicates",
                        # Only runs that ended in the window: running ones come from squeue,
                        # and at site scale they are most of what sacct would print.
                        f"--state={','.join(sorted(RUN_ENDED_STATES))}",
                        "--starttime",
                        _slurm_time(since),
                        "--endtime",
                        _slurm_time(until),
                    ],
                ),
                timeout=self.slurm_timeout,
            ),
        )
        # Tens of megabytes of JSON at site scale: parsed off the event loop, so the
        # service's pages stay responsive during a cycle.
        try:
            reading.running = await asyncio.to_thread(parse_squeue, _checked(squeue), name)
        except SlurmOutputError as e:
            reading.errors.append(f"{name}: squeue: {e}")
        try:
            reading.accounted = await asyncio.to_thread(parse_sacct, _checked(sacct), name)
        except SlurmOutputError as e:
            reading.errors.append(f"{name}: sacct: {e}; keeping the last known state")
        return reading

    # -- the database side: one transaction per cycle --------------------------------

    def apply(self, readings: Iterable[ClusterReading], now: int) -> CycleReport:
        report = CycleReport(now)
        readings = list(readings)
        jobs = _merge(readings)
        with self.sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One cycle at a time: an overlapping meter (a restart, a second instance)
                # waits here and then reads the progress the first one wrote, so no balance
                # moves twice.  SQLite's BEGIN IMMEDIATE already serialises cycles.
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": METER_LOCK})
            # Plain rows, not ORM objects: thousands of them per cycle, read once.
            accounts = {
                a.name: a
                for a in session.execute(
                    select(Account.id, Account.name, Account.price_multiplier, Account.created_at)
                )
            }
            progress = _load_progress(session, jobs)
            bookings = []
            for key, job in jobs.items():
                account = accounts.get(job.account) or accounts.get(personal_account_name(job.user))
                if account is None:
                    continue  # not a portal user's job
                if job.ended and job.end < account.created_at:
                    continue  # over before the account existed: not the ledger's to bill
                row = progress.get(key)
                try:
                    periods = self.rates.periods(job.cluster, job.partition)
                    booking = plan_job(
                        job, periods, account.price_multiplier, _progress_of(row), now
                    )
                except NoRateError as e:
                    report.errors.append(f"job {job.cluster}/{job.job_id} not charged: {e}")
                    continue
                if booking is not None:
                    bookings.append((account, row, booking))
            _write(session, bookings, report)
            for reading in readings:
                report.errors.extend(reading.errors)
                if reading.accounted is not None:
                    _save_cursor(session, reading.cluster, reading.sacct_until)
        return report


def _checked(result: CommandResult) -> str:
    if result.returncode == 124:
        raise SlurmOutputError(result.stderr.strip())
    if not result.ok:
        raise SlurmOutputError(
            (result.stderr or result.stdout).strip().splitlines()[-1:] or "failed"
        )
    return result.stdout


def _slurm_time(moment: int) -> str:
    # Slurm reads these in the cluster's local time, which here is the hub's.
    return dt.datetime.fromtimestamp(moment).strftime("%Y-%m-%dT%H:%M:%S")


JobKey = tuple[str, str, int]


def _merge(readings: list[ClusterReading]) -> dict[JobKey, JobUsage]:
    """One view per job: sacct's ended record wins, then squeue's live one, then sacct's.

    When squeue answered, a job sacct still calls running but squeue no longer lists has
    just ended and slurmdbd lags: it waits for its end time instead of accruing past it.
    """
    jobs: dict[JobKey, JobUsage] = {}
    for reading in readings:
        live = None if reading.running is None else {j.job_id for j in reading.running}
        for job in reading.accounted or ():
            if job.ended or live is None or job.job_id in live:
                jobs[(job.cluster, job.job_id, job.start)] = job
        for job in reading.running or ():
            key = (job.cluster, job.job_id, job.start)
            known = jobs.get(key)
            if known is None or not known.ended:
                jobs[key] = job
    return jobs


PROGRESS_COLUMNS = (
    MeteredJob.id,
    MeteredJob.cluster,
    MeteredJob.job_id,
    MeteredJob.job_start,
    MeteredJob.open_from,
    MeteredJob.open_amount_mc,
    MeteredJob.charged_until,
    MeteredJob.finished,
)


def _load_progress(session: Session, jobs: dict[JobKey, JobUsage]) -> dict[JobKey, Row]:
    """Progress of unfinished jobs (one query), plus any of this batch's jobs seen before."""
    rows = {
        (r.cluster, r.job_id, r.job_start): r
        for r in session.execute(select(*PROGRESS_COLUMNS).where(MeteredJob.finished.is_(False)))
    }
    unknown = [key for key, job in jobs.items() if key not in rows and job.ended]
    for start in range(0, len(unknown), CHUNK):
        chunk = unknown[start : start + CHUNK]
        found = session.execute(
            select(*PROGRESS_COLUMNS).where(
                tuple_(MeteredJob.cluster, MeteredJob.job_id, MeteredJob.job_start).in_(chunk)
            )
        )
        rows.update({(r.cluster, r.job_id, r.job_start): r for r in found})
    return rows


def _progress_of(row: Row | None) -> Progress | None:
    if row is None:
        return None
    return Progress(row.open_from, row.open_amount_mc, row.charged_until, row.finished)


def _write(
    session: Session,
    bookings: list[tuple[Row, Row | None, Booking]],
    report: CycleReport,
) -> None:
    charge_rows, new_jobs, job_updates = [], [], []
    deltas: dict[int, int] = {}
    for account, row, booking in bookings:
        job = booking.job
        for piece in booking.rows:
            charge_rows.append(
                {
                    "idempotency_key": piece.key,
                    "account_id": account.id,
                    "username": job.user,
                    "cluster": job.cluster,
                    "partition": job.partition,
                    "job_id": job.job_id,
                    "job_name": job.name[:200],
                    "job_start": job.start,
                    "interval_start": piece.interval_start,
                    "interval_end": piece.interval_end,
                    "cpus": job.tres.cpus,
                    "gpus": job.tres.gpus,
                    "mem_mb": job.tres.mem_mb,
                    "cpu_seconds": piece.cpu_seconds,
                    "gpu_seconds": piece.gpu_seconds,
                    "mem_mb_seconds": piece.mem_mb_seconds,
                    "amount_mc": piece.amount_mc,
                    "closed": piece.closed,
                }
            )
        after = booking.progress
        state = {
            "open_from": after.open_from,
            "open_amount_mc": after.open_amount_mc,
            "charged_until": after.charged_until,
            "finished": after.finished,
        }
        if row is None:
            new_jobs.append(
                {
                    "cluster": job.cluster,
                    "job_id": job.job_id,
                    "job_start": job.start,
                    "account_id": account.id,
                    "username": job.user,
                    "partition": job.partition,
                    **state,
                }
            )
        else:
            job_updates.append({"row_id": row.id, **state})
        deltas[account.id] = deltas.get(account.id, 0) + booking.delta_mc
        report.jobs_charged += 1
        report.charged_mc += booking.delta_mc

    bulk.upsert_charges(session, charge_rows)
    bulk.insert_progress(session, new_jobs)
    bulk.update_progress(session, job_updates)
    bulk.debit_balances(session, deltas)
    report.rows_written = len(charge_rows) + len(new_jobs) + len(job_updates)
    report.accounts_touched = set(deltas)


def _save_cursor(session: Session, cluster: str, until: int) -> None:
    insert = insert_for(session)(MeterCursor).values(cluster=cluster, sacct_until=until)
    session.execute(
        insert.on_conflict_do_update(index_elements=["cluster"], set_={"sacct_until": until})
    )
