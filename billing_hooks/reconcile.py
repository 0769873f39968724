"""Compare the ledger with sacct for a period and list every difference.

    python -m billing_hooks.reconcile --from 2026-11-01 --to 2026-11-30 [--site FILE]

For each finished job of a ledger account that sacct reports in the period, the ledger's
charge total must equal the job's TRES × elapsed × rate, computed afresh from sacct; a job
sacct knows but the ledger lacks (or the other way round) is a difference too.  Exit status
is 0 when there is none, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_hooks.db import database_url, make_engine, session_factory
from billing_hooks.ledger import personal_account_name
from billing_hooks.models import Account, Charge
from billing_hooks.usage import JobUsage, parse_sacct
from centre.pricing import JobCost, NoRateError, RateBook
from centre.site import DEFAULT_SITE, Site, load_site_or_exit
from centre.slurm_cli import accounting_argv, run_command

LONGEST_JOB = 366 * 86400


@dataclass(frozen=True)
class Difference:
    cluster: str
    job_id: str
    account: str
    sacct_mc: int | None
    ledger_mc: int | None
    note: str = ""

    def __str__(self) -> str:
        fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
        return (
            f"{self.cluster}/{self.job_id} ({self.account}): sacct {fmt(self.sacct_mc)} mc, "
            f"ledger {fmt(self.ledger_mc)} mc {self.note}".rstrip()
        )


def compare(
    jobs: list[JobUsage],
    ledger: dict[tuple[str, str, int], int],
    accounts: dict[str, Account],
    rates: RateBook,
) -> tuple[int, list[Difference]]:
    """(jobs checked, differences) for finished jobs; pure."""
    differences, checked, seen = [], 0, set()
    for job in jobs:
        if not job.ended:
            continue
        account = accounts.get(job.account) or accounts.get(personal_account_name(job.user))
        if account is None or job.end < account.created_at:
            continue
        key = (job.cluster, job.job_id, job.start)
        seen.add(key)
        checked += 1
        try:
            cost = JobCost(
                job.cluster,
                job.job_id,
                job.start,
                job.tres,
                rates.periods(job.cluster, job.partition),
                account.price_multiplier,
            )
            expected = cost.cumulative_mc(job.billable_until(job.end))
        except NoRateError as e:
            differences.append(
                Difference(job.cluster, job.job_id, account.name, None, ledger.get(key), str(e))
            )
            continue
        if ledger.get(key) != expected:
            differences.append(
                Difference(job.cluster, job.job_id, account.name, expected, ledger.get(key))
            )
    return checked, differences


def ledger_totals(session: Session, start: int, end: int) -> dict[tuple[str, str, int], int]:
    rows = session.execute(
        select(Charge.cluster, Charge.job_id, Charge.job_start, func.sum(Charge.amount_mc))
        # Whole jobs, including rows before the period: a job is compared as a whole.
        .where(Charge.job_start < end, Charge.job_start >= start - LONGEST_JOB)
        .group_by(Charge.cluster, Charge.job_id, Charge.job_start)
    )
    return {(c, j, s): int(total) for c, j, s, total in rows}


async def read_sacct(site: Site, start: int, end: int) -> list[JobUsage]:
    jobs = []
    for name, cluster in site.clusters.items():
        window = [
            "--starttime",
            dt.datetime.fromtimestamp(start).strftime("%Y-%m-%dT%H:%M:%S"),
            "--endtime",
            dt.datetime.fromtimestamp(end).strftime("%Y-%m-%dT%H:%M:%S"),
        ]
        result = await run_command(
            accounting_argv(name, cluster, ["sacct", "--json", "--allusers", *window]),
            timeout=120,
        )
        if not result.ok:
            raise SystemExit(f"reconcile: sacct on {name} failed: {result.stderr.strip()}")
        jobs += parse_sacct(result.stdout, name)
    return jobs


def reconcile(site: Site, url: str, start: int, end: int) -> tuple[int, list[Difference]]:
    assert site.billing is not None
    jobs = asyncio.run(read_sacct(site, start, end))
    with session_factory(make_engine(url))() as session:
        accounts = {a.name: a for a in session.scalars(select(Account))}
        ledger = ledger_totals(session, start, end)
    return compare(jobs, ledger, accounts, RateBook.from_site(site.billing))


def _day(text: str, field: str) -> int:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise SystemExit(
            f"reconcile: --{field} must be a date like 2026-11-01, not {text!r}"
        ) from None
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    today = dt.datetime.now(dt.UTC).date()
    parser.add_argument("--from", dest="start", default=today.replace(day=1).isoformat())
    parser.add_argument("--to", dest="end", default=today.isoformat(), help="inclusive")
    parser.add_argument("--site", default=os.environ.get("COREHOUR_SITE", DEFAULT_SITE))
    args = parser.parse_args(argv)
    site = load_site_or_exit(args.site)
    if site.billing is None:
        raise SystemExit(f"reconcile: {args.site} has no billing section")
    start, end = _day(args.start, "from"), _day(args.end, "to") + 86400
    checked, differences = reconcile(site, database_url(site.billing.database_url), start, end)
    for difference in differences:
        print(difference)
    print(
        f"reconcile {args.start} to {args.end}: {checked} finished jobs checked, {len(differences)} differences"
    )
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
