"""Keep Slurm's accounts and associations in step with the ledger (sacctmgr).

A ledger account is a Slurm account of the same name on every cluster; each member is
associated with it, and a person's personal account is their default, so jobs submitted
from a terminal are attributed to it too.  An exhausted account is *held* on the Slurm
side (``GrpSubmitJobs=0``, ``GrpJobs=0``): Slurm itself then refuses its jobs, including
those submitted outside the portal.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from centre.site import Site
from centre.slurm_cli import CommandResult, accounting_argv, cluster_argv, run_command

Runner = Callable[..., Awaitable[CommandResult]]
# Cancelled jobs take a moment to end; Slurm deletes an association only after they have.
REMOVE_ATTEMPTS = 6


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


# What Slurm accepts in a name, and what a load file may quote without ambiguity.
_SLURM_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
_DESCRIPTION_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,()/+-]")


def load_file(
    cluster: str,
    accounts: Iterable[Wanted],
    pairs: Iterable[tuple[str, str]],
    defaults: dict[str, str],
) -> str:
    """A ``sacctmgr load`` file that adds ``accounts`` and the (account, user) ``pairs``.

    Load adds what is missing and leaves what exists as it is (a held account stays held),
    except a listed user's DefaultAccount, which is set only where ``defaults`` asks.
    """
    for name in (cluster, *(w.account for w in accounts), *(n for pair in pairs for n in pair)):
        if not _SLURM_NAME.fullmatch(name):
            raise SacctmgrError(f"{name[:70]!r} is not a name Slurm accepts")
    lines = [f"Cluster - '{cluster}'", "Parent - 'root'"]
    for w in accounts:
        description = _DESCRIPTION_UNSAFE.sub("", w.description)[:60].strip() or w.account
        lines.append(f"Account - '{w.account}':Description='{description}':Organization='corehour'")
    for account, users in pairs_by_account(list(pairs)).items():
        lines.append(f"Parent - '{account}'")
        for user in users:
            default = f":DefaultAccount='{account}'" if defaults.get(user) == account else ""
            lines.append(f"User - '{user}'{default}")
    return "\n".join(lines) + "\n"


@dataclass
class _Batch:
    """Additions for one cluster, gathered while an earlier batch is being written."""

    accounts: dict[str, Wanted] = field(default_factory=dict)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    defaults: dict[str, str] = field(default_factory=dict)
    written: asyncio.Future | None = None  # the task that writes it
    started: bool = False


class SlurmAccounts:
    def __init__(
        self,
        site: Site,
        run: Runner = run_command,
        timeout: float = 30.0,
        remember: bool = False,
    ):
        """``remember``: keep every association seen (read or added) for the life of this
        object, and skip the read when all that is wanted is already known.  For the hub's
        spawns, which already trust a person's association once made: when a class starts,
        the first read lists the whole class, and the other students need no sacctmgr call.
        """
        self.site = site
        self.run = run
        self.timeout = timeout
        self.known: dict[str, set[tuple[str, str]]] | None = {} if remember else None
        # slurmdbd 22.05 on MariaDB gives up (and exits) on deadlocks when many sacctmgr
        # writes arrive at once, so this process writes one batch at a time, and everything
        # asked for meanwhile goes into the next batch: one `sacctmgr load` per cluster.
        self._write_lock = asyncio.Lock()
        self._batches: dict[str, _Batch] = {}

    async def _sacctmgr(
        self, cluster: str, *args: str, query: bool = False, input_text: str | None = None
    ) -> str:
        argv = ["sacctmgr", "-n", "-P", *args] if query else ["sacctmgr", "-i", *args]
        result = await self.run(
            accounting_argv(cluster, self.site.clusters[cluster], argv),
            timeout=self.timeout,
            input_text=input_text,
        )
        if not result.ok and "Nothing new added" in result.stdout:
            # Someone else (another spawn, or the billing service) added it meanwhile.
            return result.stdout
        if not result.ok:
            detail = " ".join((result.stderr + " " + result.stdout).split())[:300] or "failed"
            raise SacctmgrError(f"sacctmgr on {cluster}: {detail}")
        return result.stdout

    async def sync(
        self,
        wanted: list[Wanted],
        defaults: dict[str, str],
        clusters: Iterable[str] | None = None,
    ) -> int:
        """Create what is missing on ``clusters`` (every cluster by default); returns the
        number of changes made."""
        names = self.site.clusters if clusters is None else clusters
        # One cluster after another: clusters may share a slurmdbd, which serialises anyway.
        return sum([await self._sync_cluster(c, wanted, defaults) for c in names])

    async def _associations(self, cluster: str) -> set[tuple[str, str]]:
        rows = await self._sacctmgr(
            cluster, "show", "association", f"cluster={cluster}", "format=account,user", query=True
        )
        pairs = {tuple(line.split("|")[:2]) for line in rows.splitlines() if "|" in line}
        if not pairs:  # every cluster slurmdbd knows has its root association
            raise SacctmgrError(
                f"slurmdbd has no cluster named {cluster!r}; check the site file's cluster "
                "names against ClusterName in each slurm.conf"
            )
        return pairs

    async def _sync_cluster(
        self, cluster: str, wanted: list[Wanted], defaults: dict[str, str]
    ) -> int:
        if self.known is not None:
            known = self.known.get(cluster, set())
            if not any(missing_associations(known, {a for a, _u in known}, wanted)):
                return 0
        pairs = await self._associations(cluster)
        if self.known is not None:
            self.known.setdefault(cluster, set()).update(pairs)
        accounts = {account for account, _user in pairs}
        new_accounts, new_pairs = missing_associations(pairs, accounts, wanted)
        if new_accounts or new_pairs:
            await self._add(cluster, new_accounts, new_pairs, defaults)
        return len(new_accounts) + len(new_pairs)

    async def _add(
        self,
        cluster: str,
        accounts: list[Wanted],
        pairs: list[tuple[str, str]],
        defaults: dict[str, str],
    ) -> None:
        batch = self._batches.get(cluster)
        if batch is None or batch.started:
            batch = self._batches[cluster] = _Batch()
            # A task of its own: whoever opened the batch may be cancelled (a spawn given
            # up), and the others in it must still be written.
            batch.written = asyncio.ensure_future(self._write(cluster, batch))
        batch.accounts.update({w.account: w for w in accounts})
        batch.pairs.update(pairs)
        batch.defaults.update({u: a for u, a in defaults.items() if (a, u) in batch.pairs})
        await asyncio.shield(batch.written)

    async def _write(self, cluster: str, batch: _Batch) -> None:
        async with self._write_lock:
            batch.started = True  # from here on, newcomers open the next batch
            text = load_file(cluster, batch.accounts.values(), sorted(batch.pairs), batch.defaults)
            await self._sacctmgr(cluster, "load", "file=/dev/stdin", input_text=text)
        if self.known is not None:
            self.known.setdefault(cluster, set()).update(batch.pairs)
            self.known[cluster].update((account, "") for account in batch.accounts)

    async def remove_members(self, account: str, users: Iterable[str]) -> None:
        """Take ``users`` out of ``account`` on every cluster, so they can no longer submit to
        it from anywhere.  Their jobs in it are cancelled first: Slurm refuses to delete an
        association with active jobs, and a removed person must not keep spending."""
        users = sorted(set(users))
        if not users:
            return
        for cluster in self.site.clusters:
            await self._remove_on(cluster, account, users)
            if self.known is not None:
                self.known.get(cluster, set()).difference_update((account, u) for u in users)

    async def _remove_on(self, cluster: str, account: str, users: list[str]) -> None:
        names = ",".join(users)
        for attempt in range(REMOVE_ATTEMPTS):
            cancel = ["scancel", f"--account={account}", f"--user={names}"]
            await self.run(cluster_argv(self.site.clusters[cluster], cancel), timeout=self.timeout)
            argv = ["sacctmgr", "-i", "delete", "user", f"name={names}", f"account={account}"]
            result = await self.run(
                accounting_argv(
                    cluster, self.site.clusters[cluster], [*argv, f"cluster={cluster}"]
                ),
                timeout=self.timeout,
            )
            if result.ok or "Nothing deleted" in result.stdout:
                return
            if "Job(s) active" not in result.stdout + result.stderr:
                detail = " ".join((result.stderr + " " + result.stdout).split())[:300]
                raise SacctmgrError(f"sacctmgr on {cluster}: {detail or 'failed'}")
            await asyncio.sleep(0.5 * (attempt + 1))  # the cancelled jobs are still ending
        raise SacctmgrError(
            f"sacctmgr on {cluster}: the jobs of {names} in {account} did not end in time; "
            "repeat the removal in a minute"
        )

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
