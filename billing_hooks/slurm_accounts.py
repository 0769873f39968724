"""Keep Slurm's accounts and associations in step with the ledger (sacctmgr).

A ledger account is a Slurm account of the same name on every cluster; each member is
associated with it, and a person's personal account is their default, so jobs submitted
from a terminal are attributed to it too.  An exhausted account is *held* on the Slurm
side (``GrpSubmitJobs=0``, ``GrpJobs=0``): Slurm itself then refuses its jobs, including
those submitted outside the portal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from spawners.site_config import Site
from spawners.slurm_cli import CommandResult, cluster_argv, run_command

Runner = Callable[..., Awaitable[CommandResult]]


class SacctmgrError(RuntimeError):
    pass


@dataclass(frozen=True)
class Wanted:
    """What one ledger account needs in Slurm."""

    account: str
    description: str
    users: tuple[str, ...]
    held: bool = False


def missing_associations(
    existing: set[tuple[str, str]], accounts: set[str], wanted: Iterable[Wanted]
) -> tuple[list[Wanted], list[tuple[str, str]]]:
    """Accounts to create and (account, user) pairs to add, given what one cluster has."""
    new_accounts = [w for w in wanted if w.account not in accounts]
    new_pairs = [(w.account, u) for w in wanted for u in w.users if (w.account, u) not in existing]
    return new_accounts, new_pairs


def pairs_by_account(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """(account, user) pairs as account → users, for one ``sacctmgr add user`` per account."""
    grouped: dict[str, list[str]] = {}
    for account, user in pairs:
        grouped.setdefault(account, []).append(user)
    return grouped


class SlurmAccounts:
    def __init__(self, site: Site, run: Runner = run_command, timeout: float = 30.0):
        self.site = site
        self.run = run
        self.timeout = timeout

    async def _sacctmgr(self, cluster: str, *args: str, query: bool = False) -> str:
        argv = ["sacctmgr", "-n", "-P", *args] if query else ["sacctmgr", "-i", *args]
        result = await self.run(
            cluster_argv(self.site.clusters[cluster], argv), timeout=self.timeout
        )
        if not result.ok and "Nothing new added" in result.stdout:
            # Someone else (another spawn, or the billing service) added it meanwhile.
            return result.stdout
        if not result.ok:
            detail = " ".join((result.stderr + " " + result.stdout).split())[:300] or "failed"
            raise SacctmgrError(f"sacctmgr on {cluster}: {detail}")
        return result.stdout

    async def sync(self, wanted: list[Wanted], defaults: dict[str, str]) -> int:
        """Create what is missing on every cluster; returns the number of changes made."""
        # One cluster after another: clusters may share a slurmdbd, which serialises anyway.
        return sum([await self._sync_cluster(c, wanted, defaults) for c in self.site.clusters])

    async def _associations(self, cluster: str) -> set[tuple[str, str]]:
        rows = await self._sacctmgr(
            cluster, "show", "association", f"cluster={cluster}", "format=account,user", query=True
        )
        return {tuple(line.split("|")[:2]) for line in rows.splitlines() if "|" in line}

    async def _sync_cluster(
        self, cluster: str, wanted: list[Wanted], defaults: dict[str, str]
    ) -> int:
        pairs = await self._associations(cluster)
        accounts = {account for account, _user in pairs}
        new_accounts, new_pairs = missing_associations(pairs, accounts, wanted)
        for w in new_accounts:
            await self._sacctmgr(
                cluster,
                "add",
                "account",
                w.account,
                f"cluster={cluster}",
                f"Description={w.description[:60] or w.account}",
                "Organization=corehour",
            )
        for account, users in pairs_by_account(new_pairs).items():
            await self._sacctmgr(
                cluster, "add", "user", ",".join(users), f"account={account}", f"cluster={cluster}"
            )
        for account, user in new_pairs:
            if defaults.get(user) == account:
                # Jobs submitted from a terminal without --account are charged here.
                await self._sacctmgr(
                    cluster,
                    "modify",
                    "user",
                    "where",
                    f"name={user}",
                    f"cluster={cluster}",
                    "set",
                    f"DefaultAccount={account}",
                )
        return len(new_accounts) + len(new_pairs)

    async def hold(self, account: str, held: bool) -> None:
        """Stop (or allow again) every job of ``account`` on every cluster."""
        value = "0" if held else "-1"
        await asyncio.gather(
            *(
                self._sacctmgr(
                    c,
                    "modify",
                    "account",
                    account,
                    "set",
                    f"GrpSubmitJobs={value}",
                    f"GrpJobs={value}",
                )
                for c in self.site.clusters
            )
        )
