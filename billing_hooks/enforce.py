"""After each metering cycle: warn accounts running low, stop the ones that ran out.

The decisions are pure (``plan``); :class:`Enforcer` carries them out: notices in the
ledger for people to read on the hub's pages, servers stopped through the hub's API,
batch jobs cancelled with scancel, and the account held in Slurm so that nothing new
starts there, from the portal or from a terminal, until it is topped up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.hub_client import HubClient
from billing_hooks.ledger import insert_for
from billing_hooks.models import Account, Membership, MeteredJob, Notice, now
from billing_hooks.slurm_accounts import SacctmgrError, SlurmAccounts
from centre.pricing import format_credits
from centre.site import Site
from centre.slurm_cli import cluster_argv, run_command

log = logging.getLogger("corehour.enforce")
# sacctmgr modify is a write to slurmdbd, so the unbilled accounts' hold is not renewed
# every metering cycle.
UNBILLED_RECHECK_SECONDS = 600


@dataclass(frozen=True)
class AccountSnapshot:
    id: int
    name: str
    available_mc: int
    reference_mc: int
    members: tuple[str, ...]
    running_jobs: tuple[tuple[str, str], ...]  # (cluster, job id)
    held: bool = False


@dataclass
class Plan:
    exhausted: list[AccountSnapshot] = field(default_factory=list)
    recovered: list[AccountSnapshot] = field(default_factory=list)
    warnings: list[tuple[AccountSnapshot, int]] = field(default_factory=list)


def percent_left(account: AccountSnapshot) -> float:
    if account.reference_mc <= 0:
        return 0.0 if account.available_mc <= 0 else 100.0
    return 100.0 * account.available_mc / account.reference_mc


def plan(accounts: Iterable[AccountSnapshot], thresholds: Iterable[int]) -> Plan:
    """Which accounts to stop, release and warn; the lowest threshold crossed is the warning."""
    result = Plan()
    thresholds = sorted(thresholds)
    for account in accounts:
        if account.available_mc <= 0:
            if account.running_jobs or not account.held:
                result.exhausted.append(account)
            continue
        if account.held:
            result.recovered.append(account)
        left = percent_left(account)
        crossed = [t for t in thresholds if left <= t]
        if crossed:
            result.warnings.append((account, crossed[0]))
    return result


def snapshot(session: Session) -> list[AccountSnapshot]:
    members: dict[int, list[str]] = {}
    for account_id, username in session.execute(select(Membership.account_id, Membership.username)):
        members.setdefault(account_id, []).append(username)
    running: dict[int, list[tuple[str, str]]] = {}
    for account_id, cluster, job_id in session.execute(
        select(MeteredJob.account_id, MeteredJob.cluster, MeteredJob.job_id).where(
            MeteredJob.finished.is_(False)
        )
    ):
        running.setdefault(account_id, []).append((cluster, job_id))
    return [
        AccountSnapshot(
            id=a.id,
            name=a.name,
            available_mc=a.available_mc,
            reference_mc=a.reference_mc,
            members=tuple(sorted(members.get(a.id, ()))),
            running_jobs=tuple(running.get(a.id, ())),
            held=a.held_in_slurm,
        )
        for a in session.scalars(select(Account).where(Account.status == "active"))
    ]


def add_notice(
    session: Session, username: str, level: str, message: str, dedupe: str | None
) -> None:
    """A message for ``username``'s next hub page; ``dedupe`` makes repeats no-ops."""
    statement = insert_for(session)(Notice).values(
        username=username,
        level=level,
        message=message,
        created_at=now(),
        dismissed=False,
        dedupe_key=dedupe,
    )
    session.execute(statement.on_conflict_do_nothing(index_elements=["dedupe_key"]))


async def release_if_covered(
    sessions: sessionmaker[Session], slurm: SlurmAccounts, account_name: str
) -> bool:
    """Release a held account in Slurm at once when a payment has covered it again, so a
    top-up does not wait for the next metering cycle; True if it was released."""

    def covered() -> bool:
        with sessions() as session:
            account = session.scalar(select(Account).where(Account.name == account_name))
            return account is not None and account.held_in_slurm and account.available_mc > 0

    if not await asyncio.to_thread(covered):
        return False
    try:
        await slurm.hold(account_name, False)
    except SacctmgrError as e:
        log.error("could not release %s in Slurm (the next cycle retries): %s", account_name, e)
        return False

    def mark() -> None:
        with sessions.begin() as session:
            session.execute(
                update(Account).where(Account.name == account_name).values(held_in_slurm=False)
            )

    await asyncio.to_thread(mark)
    log.info("account %s was topped up: released in Slurm", account_name)
    return True


class Enforcer:
    def __init__(
        self,
        site: Site,
        sessions: sessionmaker[Session],
        hub: HubClient,
        slurm: SlurmAccounts,
        usage_url: str,
        slurm_timeout: float = 30.0,
    ):
        assert site.billing is not None
        self.site = site
        self.sessions = sessions
        self.hub = hub
        self.slurm = slurm
        self.usage_url = usage_url
        self.slurm_timeout = slurm_timeout
        self._unbilled_due = 0.0

    async def run(self) -> Plan:
        await self._hold_unbilled()
        accounts = await asyncio.to_thread(self._snapshot)
        decided = plan(accounts, self.site.billing.warn_at_percent)
        await asyncio.to_thread(self._warn, decided.warnings)
        for account in decided.exhausted:
            await self._stop(account)
        for account in decided.recovered:
            await self._release(account)
        return decided

    async def _hold_unbilled(self) -> None:
        """Slurm accounts outside the ledger stay held, so ``sbatch --account=corehour`` from a
        terminal is refused instead of running free.  Set at start and again every
        ``UNBILLED_RECHECK_SECONDS``, so a hold someone lifts by hand comes back."""
        if time.monotonic() < self._unbilled_due:
            return
        try:
            for account in self.site.billing.unbilled_accounts:
                await self.slurm.hold(account, True)
            self._unbilled_due = time.monotonic() + UNBILLED_RECHECK_SECONDS
        except SacctmgrError as e:
            log.error("could not hold the unbilled accounts in Slurm (retrying next cycle): %s", e)

    def _snapshot(self) -> list[AccountSnapshot]:
        with self.sessions() as session:
            return snapshot(session)

    def _warn(self, warnings: list[tuple[AccountSnapshot, int]]) -> None:
        if not warnings:
            return
        with self.sessions.begin() as session:
            for account, threshold in warnings:
                message = (
                    f"Account {account.name} has {percent_left(account):.0f}% of its credits "
                    f"left ({format_credits(account.available_mc)}). Servers stop when it reaches 0; "
                    f"ask for a top-up in time. Usage: {self.usage_url}"
                )
                for username in account.members:
                    dedupe = f"warn:{account.name}:{account.reference_mc}:{threshold}:{username}"
                    add_notice(session, username, "warning", message, dedupe)

    async def _stop(self, account: AccountSnapshot) -> None:
        log.warning(
            "account %s is exhausted: stopping %d jobs", account.name, len(account.running_jobs)
        )
        jobs = set(account.running_jobs)
        stopped_servers = await self.hub.stop_servers_running(jobs)
        remaining = jobs - {job for job, _server in stopped_servers}
        by_cluster: dict[str, list[str]] = {}
        for cluster, job_id in remaining:
            by_cluster.setdefault(cluster, []).append(job_id)
        for cluster, ids in by_cluster.items():
            result = await run_command(
                cluster_argv(self.site.clusters[cluster], ["scancel", *sorted(ids)]),
                timeout=self.slurm_timeout,
            )
            if not result.ok:
                log.error("scancel on %s failed: %s", cluster, result.stderr.strip())
        try:
            await self.slurm.hold(account.name, True)
            await asyncio.to_thread(self._mark_held, account.id, True)
        except SacctmgrError as e:
            log.error("could not hold %s in Slurm: %s", account.name, e)
        await asyncio.to_thread(self._tell_stopped, account, stopped_servers, remaining)

    def _tell_stopped(self, account: AccountSnapshot, servers, jobs) -> None:
        with self.sessions.begin() as session:
            for (cluster, job_id), (username, server_name) in servers:
                label = f"'{server_name}'" if server_name else "(default)"
                add_notice(
                    session,
                    username,
                    "danger",
                    f"Your server {label} (job {job_id} on {cluster}) was stopped because account "
                    f"{account.name} ran out of credits. Ask for a top-up, then start it again. "
                    f"Usage: {self.usage_url}",
                    f"stopped:{cluster}:{job_id}",
                )
            for cluster, job_id in jobs:
                for username in account.members:
                    add_notice(
                        session,
                        username,
                        "danger",
                        f"Job {job_id} on {cluster} was cancelled because account {account.name} "
                        f"ran out of credits. Usage: {self.usage_url}",
                        f"cancelled:{cluster}:{job_id}:{username}",
                    )

    def _mark_held(self, account_id: int, held: bool) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Account).where(Account.id == account_id).values(held_in_slurm=held)
            )

    async def _release(self, account: AccountSnapshot) -> None:
        try:
            await self.slurm.hold(account.name, False)
            await asyncio.to_thread(self._mark_held, account.id, False)
            log.info("account %s has credits again: released in Slurm", account.name)
        except SacctmgrError as e:
            log.error("could not release %s in Slurm: %s", account.name, e)
