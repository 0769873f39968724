"""Monthly statement of a busy account: one grouped query against adding rows up in Python.

    /opt/corehour/hub/bin/python -m bench.statement [--jobs 20000] [--hours 50] [--runs 3]

Makes a fresh PostgreSQL ledger (tests.ledger_db: 127.0.0.1:5432), COPYs jobs × hours charge
rows (1,000,000 by default) for one account into November 2026, ANALYZEs, then times in one
run, each in a new session:

- ours: ``build_statement`` (one GROUP BY query, transactions, the Statement upsert);
- baseline: the same statement the naive way, every charge row of the month loaded through
  the ORM and added up per job in Python.

Both must produce the same lines.  Writes bench/results/statement.json and drops the
database, also when interrupted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator

import psycopg
from sqlalchemy import select

from bench.report import write_result
from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger import NewAccount, create_account
from billing_hooks.models import Account, Charge
from billing_hooks.statements import (
    JobLine,
    StatementData,
    build_statement,
    month_bounds,
    month_transactions,
)
from tests.ledger_db import drop_postgres, postgres_url

MONTH = "2026-11"
TARGET_S = 2.0
# One timed run of the baseline is enough once it takes this long.
SLOW_S = 30.0
COLUMNS = (
    "idempotency_key", "account_id", "username", "cluster", "partition", "job_id", "job_name",
    "job_start", "interval_start", "interval_end", "cpus", "gpus", "mem_mb", "cpu_seconds",
    "gpu_seconds", "mem_mb_seconds", "amount_mc", "closed",
)  # fmt: skip


def charge_rows(account_id: int, jobs: int, hours: int) -> Iterator[tuple]:
    """Jobs of ``hours`` hour rows each, starting at odd minutes all through the month."""
    first, after = month_bounds(MONTH)
    last_start_hour = (after - first) // 3600 - hours
    for k in range(jobs):
        gpus = 1 if k % 10 == 0 else 0
        cpus = (1, 2, 4, 8, 16)[k % 5]
        job_start = first + (k * 7919) % last_start_hour * 3600 + k % 60 * 60
        job_id = str(1_000_000 + k)
        cluster = ("alpha", "beta")[k % 2]
        start = job_start
        for hour in range(hours):
            end = job_start - job_start % 3600 + (hour + 1) * 3600
            seconds = end - start
            yield (
                f"bench:{cluster}:{job_id}:{start}", account_id, f"user{k % 200}", cluster,
                "gpu" if gpus else "cpu", job_id, f"sim-{k % 97}", job_start, start, end, cpus,
                gpus, cpus * 4096, cpus * seconds, gpus * seconds, cpus * 4096 * seconds,
                (cpus * 50 + gpus * 1200) * seconds // 3600, True,
            )  # fmt: skip
            start = end


def load(url: str, factory, jobs: int, hours: int) -> int:
    """The account's id, after its rows are in and the planner knows them."""
    with factory() as session, session.begin():
        spec = NewAccount("proj-bench", "project", "bench", "Benchmark group")
        account_id = create_account(session, spec, "bench").id
    with psycopg.connect(libpq(url)) as conn:
        with conn.cursor().copy(f"COPY charge ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in charge_rows(account_id, jobs, hours):
                copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE charge")
    return account_id


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def naive_statement(session, account: Account, month: str) -> StatementData:
    """Every charge row of the month through the ORM, added up per job in Python."""
    first, after = month_bounds(month)
    rows = session.scalars(
        select(Charge).where(
            Charge.account_id == account.id,
            Charge.interval_start >= first,
            Charge.interval_start < after,
        )
    ).all()
    jobs: dict[tuple, dict] = {}
    for row in rows:
        job = jobs.setdefault(
            (row.cluster, row.job_id, row.job_start),
            dict(
                cluster=row.cluster,
                partition=row.partition,
                job_id=row.job_id,
                job_name=row.job_name,
                username=row.username,
                cpus=row.cpus,
                gpus=row.gpus,
                start=row.interval_start,
                end=row.interval_end,
                cpu_seconds=0,
                gpu_seconds=0,
                amount_mc=0,
            ),
        )
        job["start"] = min(job["start"], row.interval_start)
        job["end"] = max(job["end"], row.interval_end)
        job["cpu_seconds"] += row.cpu_seconds
        job["gpu_seconds"] += row.gpu_seconds
        job["amount_mc"] += row.amount_mc
    lines = sorted(
        (JobLine(**job) for job in jobs.values()),
        key=lambda line: (line.start, line.cluster, line.job_id),
    )
    return StatementData(
        account_name=account.name,
        account_display=account.display_name,
        account_kind=account.kind,
        month=month,
        lines=tuple(lines),
        transactions=tuple(month_transactions(session, account.id, month)),
        balance_mc=session.scalar(select(Account.balance_mc).where(Account.id == account.id)),
    )


def timed(factory, account_id: int, build: Callable) -> tuple[float, StatementData]:
    with factory() as session, session.begin():
        account = session.get(Account, account_id)
        started = time.perf_counter()
        data = build(session, account, MONTH)
        return time.perf_counter() - started, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--hours", type=int, default=50, help="charge rows per job")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    url = postgres_url()
    engine = make_engine(url)
    try:
        factory = session_factory(engine)
        started = time.perf_counter()
        account_id = load(url, factory, args.jobs, args.hours)
        rows = args.jobs * args.hours
        print(f"loaded {rows:,} charge rows in {time.perf_counter() - started:.1f} s")

        ours_all, ours = [], None
        for _ in range(args.runs):
            seconds, ours = timed(factory, account_id, build_statement)
            ours_all.append(seconds)
            print(f"ours     {seconds:7.3f} s")
        baseline_all, baseline = [], None
        for _ in range(args.runs):
            seconds, baseline = timed(factory, account_id, naive_statement)
            baseline_all.append(seconds)
            print(f"baseline {seconds:7.3f} s")
            if seconds > SLOW_S:
                break
        if ours.lines != baseline.lines or ours.jobs != args.jobs:
            raise SystemExit("the grouped query and the naive sum disagree")

        with engine.connect() as conn:
            server = conn.exec_driver_sql("SHOW server_version").scalar()
        ours_s = statistics.median(ours_all)
        write_result(
            "statement",
            "time to build one account's monthly statement (median of runs), PostgreSQL",
            "s",
            ours_s,
            statistics.median(baseline_all),
            rows=rows,
            jobs=args.jobs,
            target="≤ 2 s",
            within_target=ours_s <= TARGET_S,
            ours_all=[round(s, 3) for s in ours_all],
            baseline_all=[round(s, 3) for s in baseline_all],
            baseline_is="every charge row of the month loaded through the ORM, summed in Python",
            machine=f"{os.cpu_count()} CPUs, PostgreSQL {server}, server settings as installed",
        )
    finally:
        engine.dispose()
        drop_postgres(url)


if __name__ == "__main__":
    main()
