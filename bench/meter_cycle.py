"""Metering cycle: the bulk ``Meter.apply`` against a per-job loop, in one run.

    /opt/corehour/hub/bin/python -m bench.meter_cycle [--jobs 5000] [--users 500]
        [--cycles 5] [--baseline-cycles 3] [--sim-jobs 500] [--sim-hours 2] [--profile]

Steady state: ``--jobs`` notebook jobs of ``--users`` people (each with a personal ledger
account; a tenth of the jobs run under one of 20 project accounts) on alpha and beta, with
1 % of them ending and as many starting per 60 s cycle.  Each cycle gets Slurm 22.05-shaped
``squeue --json`` and ``sacct --json`` text per cluster (records copied from
tests/unit/fixtures/slurm-22.05.8; sacct lists the jobs that ended in the window, as the
meter's ``--state`` filter asks).  The timed part parses that text with usage.parse_squeue/parse_sacct and books it;
producing the text is Slurm's work and is not timed.

- ours: ``Meter.apply``, one database transaction per cycle with bulk statements.
- baseline: a per-job loop in one process on the same kind of database: for each job one
  SELECT of its progress, the charge upsert, progress and balance writes that a correct
  per-job meter needs, and one COMMIT.

Both sides start from the same state (one bulk cycle books the first sight of every job)
and see identical readings; their totals are compared afterwards.  Then ``--sim-jobs``
jobs that run throughout are metered for ``--sim-hours`` at 60 s cycles, to count charge
rows added per running job and hour.  Writes bench/results/meter_cycle.json.  Needs the
local PostgreSQL (127.0.0.1:5432, as tests/ledger_db.py); no Slurm.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import os
import platform
import pstats
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bench.report import write_result
from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger import (
    NewAccount,
    create_account,
    ensure_personal_account,
    insert_for,
    personal_account_name,
)
from billing_hooks.meter import SACCT_OVERLAP, ClusterReading, CycleReport, Meter
from billing_hooks.metering import Progress, plan_job
from billing_hooks.models import Account, Charge, MeteredJob
from billing_hooks.usage import parse_sacct, parse_squeue
from centre.pricing import RateBook
from centre.site import Site, parse_site
from tests.ledger_db import drop_postgres, postgres_url, sqlite_url

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "unit" / "fixtures" / "slurm-22.05.8"
STEP = 60
CHURN = 0.01
PROJECTS = 20
OPENING_MC = 100_000_000
RATES = [
    {"cluster": "alpha", "partition": "cpu", "core_hour": "0.05", "gb_mem_hour": "0.004"},
    {"cluster": "alpha", "partition": "gpu", "core_hour": "0.05", "gpu_hour": "1.2"},
    {"cluster": "beta", "partition": "cpu", "core_hour": "0.04"},
    {"cluster": "beta", "partition": "bigmem", "core_hour": "0.06", "gb_mem_hour": "0.003"},
]
# (cluster, partition, share of jobs)
PLACES = [("alpha", "cpu", 5), ("alpha", "gpu", 1), ("beta", "cpu", 3), ("beta", "bigmem", 1)]


def bench_site() -> Site:
    raw = yaml.safe_load((REPO / "deploy" / "site.example.yaml").read_text())
    raw["billing"] = {"rates": [{"valid_from": "2020-01-01", **rate} for rate in RATES]}
    return parse_site(raw, "site.example.yaml + bench rates")


# -- what Slurm prints ----------------------------------------------------------------


@dataclass
class Job:
    cluster: str
    partition: str
    job_id: int
    user: str
    account: str
    start: int
    cpus: int
    gpus: int
    mem_mb: int
    end: int | None = None


class SlurmText:
    """squeue/sacct JSON records in the 22.05 shape, built from the captured fixtures."""

    def __init__(self):
        squeue = json.loads((FIXTURES / "squeue-mixed.json").read_text())
        sacct = json.loads((FIXTURES / "sacct-alpha.json").read_text())
        self.squeue_meta = json.dumps(squeue["meta"])
        self.sacct_meta = json.dumps(sacct["meta"])
        self.squeue_job = next(j for j in squeue["jobs"] if j["job_state"] == "RUNNING")
        self.sacct_job = next(j for j in sacct["jobs"] if j["steps"])

    def squeue_record(self, job: Job) -> str:
        raw = copy.deepcopy(self.squeue_job)
        tres = f"cpu={job.cpus},mem={job.mem_mb}M,node=1,billing={job.cpus}"
        if job.gpus:
            tres += f",gres/gpu={job.gpus}"
        raw.update(
            job_id=job.job_id,
            user_name=job.user,
            group_name=job.user,
            account=job.account,
            cluster=job.cluster,
            partition=job.partition,
            name=f"jupyterhub-{job.user}",
            job_state="RUNNING",
            start_time=job.start,
            end_time=job.start + 12 * 3600,
            time_limit=720,
            cpus=job.cpus,
            tres_req_str=tres,
            tres_alloc_str=tres,
        )
        return json.dumps(raw)

    def sacct_record(self, job: Job) -> str:
        raw = copy.deepcopy(self.sacct_job)
        allocated = [
            {"type": "cpu", "name": None, "id": 1, "count": job.cpus},
            {"type": "mem", "name": None, "id": 2, "count": job.mem_mb},
            {"type": "energy", "name": None, "id": 3, "count": None},
            {"type": "node", "name": None, "id": 4, "count": 1},
            {"type": "billing", "name": None, "id": 5, "count": job.cpus},
        ]
        if job.gpus:
            allocated.append({"type": "gres", "name": "gpu", "id": 1001, "count": job.gpus})
        raw.update(
            job_id=job.job_id,
            user=job.user,
            group=job.user,
            account=job.account,
            cluster=job.cluster,
            partition=job.partition,
            name=f"jupyterhub-{job.user}",
            state={"current": "COMPLETED" if job.end else "RUNNING", "reason": "None"},
        )
        raw["association"].update(account=job.account, cluster=job.cluster, user=job.user)
        raw["time"].update(start=job.start, end=job.end or 0, elapsed=0, limit=720)
        raw["tres"] = {"allocated": allocated, "requested": allocated}
        raw["steps"][0]["step"]["job_id"] = job.job_id
        return json.dumps(raw)

    def document(self, meta: str, records: list[str]) -> str:
        return '{"meta": ' + meta + ', "errors": [], "jobs": [' + ",".join(records) + "]}"


class Fleet:
    """Running jobs that end and start at a steady rate; the same seed, the same history."""

    def __init__(self, size: int, users: int, now: int, churn: float, seed: int = 7):
        self.rng = random.Random(seed)
        self.users = [f"user{n:04d}" for n in range(users)]
        self.churn = churn
        self.text = SlurmText()
        self.next_id = {"alpha": 100_000, "beta": 100_000}
        self.running: dict[tuple[str, int], tuple[Job, str, str]] = {}
        self.ended: list[tuple[Job, str]] = []
        for _ in range(size):
            self._start(now - self.rng.randint(STEP, 8 * 3600))

    def _start(self, start: int) -> None:
        cluster, partition = self.rng.choices(
            [(c, p) for c, p, _ in PLACES], [w for *_, w in PLACES]
        )[0]
        self.next_id[cluster] += 1
        user = self.rng.choice(self.users)
        project = self.rng.random() < 0.1
        job = Job(
            cluster=cluster,
            partition=partition,
            job_id=self.next_id[cluster],
            user=user,
            account=f"proj-{self.rng.randrange(PROJECTS):02d}" if project else "corehour",
            start=start,
            cpus=self.rng.randint(1, 8),
            gpus=self.rng.randint(1, 4) if partition == "gpu" else 0,
            mem_mb=1024 * self.rng.randint(*((64, 256) if partition == "bigmem" else (2, 32))),
        )
        records = (self.text.squeue_record(job), self.text.sacct_record(job))
        self.running[(cluster, job.job_id)] = (job, *records)

    def advance(self, now: int) -> None:
        """One step: some jobs ended during the last minute, as many started."""
        turnover = round(len(self.running) * self.churn)
        for key in self.rng.sample(sorted(self.running), turnover):
            job = self.running.pop(key)[0]
            job.end = max(job.start, now - self.rng.randint(1, STEP - 1))
            self.ended.append((job, self.text.sacct_record(job)))
        for _ in range(turnover):
            self._start(now - self.rng.randint(0, STEP - 1))
        # sacct's window reaches back to the last read less the overlap.
        self.ended = [(j, r) for j, r in self.ended if j.end >= now - STEP - SACCT_OVERLAP]

    def outputs(self) -> dict[str, tuple[str, str]]:
        """Per cluster: (squeue --json, sacct --json) as printed."""
        texts = {}
        for cluster in ("alpha", "beta"):
            live = [v for (c, _), v in self.running.items() if c == cluster]
            gone = [r for j, r in self.ended if j.cluster == cluster]
            texts[cluster] = (
                self.text.document(self.text.squeue_meta, [sq for _, sq, _ in live]),
                # The meter asks sacct only for jobs that ended in the window (--state).
                self.text.document(self.text.sacct_meta, gone),
            )
        return texts


def read(outputs: dict[str, tuple[str, str]], now: int) -> list[ClusterReading]:
    return [
        ClusterReading(
            cluster,
            running=parse_squeue(squeue, cluster),
            accounted=parse_sacct(sacct, cluster),
            sacct_until=now,
        )
        for cluster, (squeue, sacct) in outputs.items()
    ]


# -- the baseline: one transaction per job --------------------------------------------


def per_job_cycle(sessions: sessionmaker[Session], rates: RateBook, readings, now) -> int:
    """The naive meter; returns the rows it wrote."""
    jobs = {}
    for reading in readings:
        for job in reading.running:
            jobs[(job.cluster, job.job_id, job.start)] = job
        for job in reading.accounted:
            if job.ended:
                jobs[(job.cluster, job.job_id, job.start)] = job
    with sessions() as session:
        accounts = {a.name: (a.id, a.price_multiplier) for a in session.scalars(select(Account))}
    written = 0
    for (cluster, job_id, start), job in jobs.items():
        found = accounts.get(job.account) or accounts.get(personal_account_name(job.user))
        if found is None:
            continue
        account_id, multiplier = found
        with sessions.begin() as session:
            row = session.scalar(
                select(MeteredJob).where(
                    MeteredJob.cluster == cluster,
                    MeteredJob.job_id == job_id,
                    MeteredJob.job_start == start,
                )
            )
            progress = row and Progress(
                row.open_from, row.open_amount_mc, row.charged_until, row.finished
            )
            periods = rates.periods(cluster, job.partition)
            booking = plan_job(job, periods, multiplier, progress, now)
            if booking is None:
                continue
            for piece in booking.rows:
                insert = insert_for(session)(Charge).values(
                    idempotency_key=piece.key,
                    account_id=account_id,
                    username=job.user,
                    cluster=cluster,
                    partition=job.partition,
                    job_id=job_id,
                    job_name=job.name[:200],
                    job_start=start,
                    interval_start=piece.interval_start,
                    interval_end=piece.interval_end,
                    cpus=job.tres.cpus,
                    gpus=job.tres.gpus,
                    mem_mb=job.tres.mem_mb,
                    cpu_seconds=piece.cpu_seconds,
                    gpu_seconds=piece.gpu_seconds,
                    mem_mb_seconds=piece.mem_mb_seconds,
                    amount_mc=piece.amount_mc,
                    closed=piece.closed,
                )
                changed = ("interval_end", "amount_mc", "cpu_seconds", "gpu_seconds")
                changed += ("mem_mb_seconds", "closed")
                session.execute(
                    insert.on_conflict_do_update(
                        index_elements=["idempotency_key"],
                        set_={name: insert.excluded[name] for name in changed},
                    )
                )
            after = booking.progress
            if row is None:
                row = MeteredJob(
                    cluster=cluster,
                    job_id=job_id,
                    job_start=start,
                    account_id=account_id,
                    username=job.user,
                    partition=job.partition,
                )
                session.add(row)
            row.open_from, row.open_amount_mc = after.open_from, after.open_amount_mc
            row.charged_until, row.finished = after.charged_until, after.finished
            session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(balance_mc=Account.balance_mc - booking.delta_mc)
            )
            written += len(booking.rows) + 1
    return written


# -- one database's run ---------------------------------------------------------------


class Ledger:
    """A fresh, migrated ledger with every bench user's and project's account."""

    def __init__(self, kind: str, workdir: Path, users: list[str]):
        self.kind = kind
        self.url = sqlite_url(workdir) if kind == "sqlite" else postgres_url()
        self.engine = make_engine(self.url)
        self.sessions = session_factory(self.engine)
        with self.sessions.begin() as session:
            for user in users:
                ensure_personal_account(session, user, OPENING_MC, "standard", Decimal(1))
            for n in range(PROJECTS):
                spec = NewAccount(f"proj-{n:02d}", "project", owner=users[n % len(users)])
                create_account(session, spec, actor="bench", opening_mc=OPENING_MC)

    def charged_mc(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.coalesce(func.sum(Charge.amount_mc), 0)))

    def charge_rows(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count(Charge.id)))

    def close(self) -> None:
        self.engine.dispose()
        if self.kind == "postgresql":
            drop_postgres(self.url)


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def steady_state(kind: str, args, site: Site, rates: RateBook, workdir: Path) -> dict:
    # The timed cycles end 30 s before an hour; the one after them closes every open row.
    t0 = 1_800_000_000 + 3600 - STEP * args.cycles - 30
    result: dict = {}

    fleet = Fleet(args.jobs, args.users, t0, CHURN)
    ledger = Ledger(kind, workdir, fleet.users)
    try:
        meter = Meter(site, ledger.sessions, rates)
        meter.apply(read(fleet.outputs(), t0), t0)  # first sight of every job: not steady
        parse, apply, reports, totals = [], [], [], {}
        for n in range(1, args.cycles + 2):
            now = t0 + n * STEP
            fleet.advance(now)
            outputs = fleet.outputs()
            if args.profile and n == 2:
                profile(meter, outputs, now)
                continue
            seconds, readings = timed(lambda outputs=outputs, now=now: read(outputs, now))
            apply_seconds, report = timed(lambda r=readings, now=now: meter.apply(r, now))
            if n > args.cycles:
                result["hour_boundary_cycle_s"] = round(seconds + apply_seconds, 3)
                result["hour_boundary_rows_written"] = report.rows_written
                break
            parse.append(seconds)
            apply.append(apply_seconds)
            reports.append(report)
            totals[n] = ledger.charged_mc()
        cycles = [p + a for p, a in zip(parse, apply, strict=True)]
        middle = cycles.index(statistics.median_low(cycles))
        result.update(
            ours_s=statistics.median(cycles),
            ours_parse_s=round(statistics.median(parse), 3),
            ours_apply_s=round(statistics.median(apply), 3),
            rows_written=reports[middle].rows_written,
            jobs_charged=reports[middle].jobs_charged,
            squeue_and_sacct_mb=round(sum(len(a) + len(b) for a, b in outputs.values()) / 1e6, 1),
        )
    finally:
        ledger.close()

    fleet = Fleet(args.jobs, args.users, t0, CHURN)
    ledger = Ledger(kind, workdir, fleet.users)
    try:
        Meter(site, ledger.sessions, rates).apply(read(fleet.outputs(), t0), t0)
        baseline, written = [], 0
        for n in range(1, args.baseline_cycles + 1):
            now = t0 + n * STEP
            fleet.advance(now)
            outputs = fleet.outputs()
            seconds, written = timed(
                lambda o=outputs, now=now: per_job_cycle(ledger.sessions, rates, read(o, now), now)
            )
            baseline.append(seconds)
            if n in totals and ledger.charged_mc() != totals[n]:
                raise SystemExit(
                    f"{kind}: the per-job loop charged {ledger.charged_mc()} mc by cycle {n}, "
                    f"the meter {totals[n]}: they are not doing the same work"
                )
        result.update(baseline_s=statistics.median(baseline), baseline_rows_written=written)
    finally:
        ledger.close()
    return result


def profile(meter: Meter, outputs, now: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    meter.apply(read(outputs, now), now)
    profiler.disable()
    print(f"--- profile of one steady cycle on {meter.sessions.kw['bind'].dialect.name}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def rows_per_job_hour(kind: str, args, site: Site, rates: RateBook, workdir: Path) -> dict:
    """Charge rows added per running job and hour over a long run of 60 s cycles."""
    t0 = 1_800_000_000 + 17 * 60  # not on an hour: each job's first row is already open
    fleet = Fleet(args.sim_jobs, max(1, args.sim_jobs // 10), t0, churn=0.0)
    ledger = Ledger(kind, workdir, fleet.users)
    try:
        meter = Meter(site, ledger.sessions, rates)
        meter.apply(read(fleet.outputs(), t0), t0)
        before = ledger.charge_rows()
        cycles = int(args.sim_hours * 3600 / STEP)
        outputs = fleet.outputs()  # nothing starts or ends: the same text every cycle
        times, report = [], CycleReport(t0)
        for n in range(1, cycles + 1):
            seconds, report = timed(
                lambda n=n: meter.apply(read(outputs, t0 + n * STEP), t0 + n * STEP)
            )
            times.append(seconds)
        added = ledger.charge_rows() - before
        return {
            "rows_per_job_hour": round(added / (args.sim_jobs * args.sim_hours), 3),
            "charge_rows_added": added,
            "cycles": cycles,
            "median_cycle_s": round(statistics.median(times), 3),
            "max_cycle_s": round(max(times), 3),
            "last_rows_written": report.rows_written,
        }
    finally:
        ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--baseline-cycles", type=int, default=3)
    parser.add_argument("--sim-jobs", type=int, default=500)
    parser.add_argument("--sim-hours", type=float, default=2)
    parser.add_argument("--profile", action="store_true", help="profile one steady cycle")
    args = parser.parse_args()

    site = bench_site()
    rates = RateBook.from_site(site.billing)
    runs, simulated = {}, {}
    with tempfile.TemporaryDirectory(prefix="meter-bench-") as tmp:
        for kind in ("sqlite", "postgresql"):
            runs[kind] = steady_state(kind, args, site, rates, Path(tmp))
            simulated[kind] = rows_per_job_hour(kind, args, site, rates, Path(tmp))
            print(f"{kind}: {json.dumps(runs[kind])} simulation: {json.dumps(simulated[kind])}")
    worse = max(runs, key=lambda kind: runs[kind]["ours_s"])
    write_result(
        "meter_cycle",
        "meter_cycle",
        "s",
        ours=runs[worse]["ours_s"],
        baseline=runs[worse]["baseline_s"],
        description=(
            f"median steady metering cycle (parse squeue+sacct JSON, book all jobs) for "
            f"{args.jobs} running jobs of {args.users} users, 1 % churn per 60 s cycle; "
            "baseline: one transaction per job"
        ),
        ours_database=worse,
        seconds={
            kind: {key: round(value, 3) for key, value in run.items() if key.endswith("_s")}
            for kind, run in runs.items()
        },
        rows_written={kind: run["rows_written"] for kind, run in runs.items()},
        hour_boundary_rows_written={
            kind: run["hour_boundary_rows_written"] for kind, run in runs.items()
        },
        rows_per_job_hour=max(s["rows_per_job_hour"] for s in simulated.values()),
        simulation={
            "jobs": args.sim_jobs,
            "hours": args.sim_hours,
            "cycle_s": STEP,
            **{kind: s for kind, s in simulated.items()},
        },
        jobs=args.jobs,
        users=args.users,
        machine=f"{os.cpu_count()} CPUs, {platform.platform(terse=True)}, PostgreSQL on the same host",
        cycles=args.cycles,
        baseline_cycles=args.baseline_cycles,
    )


if __name__ == "__main__":
    main()
