"""Slurm associations kept in step with the ledger: few sacctmgr calls, however many ask."""

from __future__ import annotations

import asyncio

import pytest

from billing_hooks.slurm_accounts import SlurmAccounts, Wanted, pairs_by_account
from spawners.site_config import load_site
from spawners.slurm_cli import CommandResult
from tests.harness import DEPLOY

pytestmark = pytest.mark.unit


class Sacctmgr:
    """Answers sacctmgr as slurmdbd would, from each cluster's (account, user) associations."""

    def __init__(self, existing: set[tuple[str, str]], clusters=("alpha", "beta")):
        self.existing = {cluster: set(existing) for cluster in clusters}
        self.calls: list[list[str]] = []

    async def __call__(self, argv, timeout: float) -> CommandResult:
        argv = list(argv[argv.index("sacctmgr") :])
        self.calls.append(argv)
        cluster = next(a.split("=", 1)[1] for a in argv if a.startswith("cluster="))
        have = self.existing[cluster]
        await asyncio.sleep(0.01)  # others ask while this one is on its way
        if "show" in argv:
            rows = "".join(f"{a}|{u}\n" for a, u in sorted(have))
            return CommandResult(tuple(argv), 0, rows, "")
        if argv[2:4] == ["add", "user"]:
            account = next(a.split("=", 1)[1] for a in argv if a.startswith("account="))
            new = {(account, u) for u in argv[4].split(",")} - have
            have |= new
            if not new:
                return CommandResult(tuple(argv), 1, " Nothing new added.\n", "")
            return CommandResult(tuple(argv), 0, " Associations =\n", "")
        if argv[2:4] == ["add", "account"]:
            have.add((argv[4], ""))
        return CommandResult(tuple(argv), 0, "", "")

    def count(self, word: str) -> int:
        return sum(1 for call in self.calls if word in call)


@pytest.fixture
def site():
    return load_site(DEPLOY / "site.example.yaml")


def test_a_class_starting_together_reads_each_cluster_once(site):
    students = [f"s{i:02d}" for i in range(30)]
    sacctmgr = Sacctmgr({("course-x", ""), *(("course-x", s) for s in students)})
    slurm = SlurmAccounts(site, run=sacctmgr)

    async def everyone():
        return await asyncio.gather(
            *(slurm.sync([Wanted("course-x", "x", (s,))], {}) for s in students)
        )

    assert asyncio.run(everyone()) == [0] * 30
    assert sacctmgr.count("show") == len(site.clusters)
    assert sacctmgr.count("add") == 0


def test_new_people_are_added_in_one_call_per_account_and_cluster(site):
    sacctmgr = Sacctmgr({("corehour", "ann")})
    slurm = SlurmAccounts(site, run=sacctmgr)
    wanted = [Wanted("course-y", "y", ("ann", "bo", "cy")), Wanted("u-dee", "dee", ("dee",))]
    changes = asyncio.run(slurm.sync(wanted, {"dee": "u-dee"}))
    per_cluster = 2 + 4  # two new accounts and four new associations
    assert changes == per_cluster * len(site.clusters)
    adds = [c for c in sacctmgr.calls if c[2:4] == ["add", "user"]]
    assert sorted(c[4] for c in adds) == sorted(["ann,bo,cy", "dee"] * len(site.clusters))
    assert sacctmgr.count("DefaultAccount=u-dee") == len(site.clusters)
    # What it added is remembered: asking again costs nothing.
    calls = len(sacctmgr.calls)
    assert asyncio.run(slurm.sync(wanted, {})) == 0
    assert len(sacctmgr.calls) == calls


def test_an_association_someone_else_added_meanwhile_is_not_an_error(site):
    sacctmgr = Sacctmgr({("course-z", "")})
    slurm = SlurmAccounts(site, run=sacctmgr)
    asyncio.run(slurm.sync([Wanted("course-z", "z", ())], {}))  # reads and caches
    for have in sacctmgr.existing.values():
        have.add(("course-z", "eve"))  # added by another process
    assert asyncio.run(slurm.sync([Wanted("course-z", "z", ("eve",))], {})) == len(site.clusters)


def test_pairs_are_grouped_by_account():
    assert pairs_by_account([("a", "x"), ("b", "y"), ("a", "z")]) == {"a": ["x", "z"], "b": ["y"]}


def test_changes_go_to_slurmdbd_one_at_a_time(site):
    """Many new people at once must not send slurmdbd concurrent adds (it deadlocks and exits)."""
    sacctmgr = Sacctmgr(set())
    busy, most = 0, 0
    answer = sacctmgr.__call__

    async def counting(argv, timeout):
        nonlocal busy, most
        writing = "show" not in argv
        busy += writing
        most = max(most, busy)
        try:
            return await answer(argv, timeout)
        finally:
            busy -= writing

    slurm = SlurmAccounts(site, run=counting)

    async def twenty_new_people():
        await asyncio.gather(
            *(
                slurm.sync([Wanted(f"u-p{i}", "p", (f"p{i}",))], {f"p{i}": f"u-p{i}"})
                for i in range(20)
            )
        )

    asyncio.run(twenty_new_people())
    assert most == 1
    assert sacctmgr.count("add") == 20 * 2 * len(site.clusters)
