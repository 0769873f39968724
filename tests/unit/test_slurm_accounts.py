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
    # Asking again changes nothing: one read per cluster, no adds.
    calls = len(sacctmgr.calls)
    assert asyncio.run(slurm.sync(wanted, {})) == 0
    assert ["show" in c for c in sacctmgr.calls[calls:]] == [True] * len(site.clusters)


def test_an_association_someone_else_added_meanwhile_is_not_an_error(site):
    sacctmgr = Sacctmgr({("course-z", "")})
    slurm = SlurmAccounts(site, run=sacctmgr)

    async def read_then_someone_else_adds():
        # Both syncs read before either adds: the second add finds it there already.
        await asyncio.gather(*(slurm.sync([Wanted("course-z", "z", ("eve",))], {}) for _ in (1, 2)))

    asyncio.run(read_then_someone_else_adds())
    assert ("course-z", "eve") in sacctmgr.existing["alpha"]
    refusals = [c for c in sacctmgr.calls if c[2:4] == ["add", "user"]]
    assert len(refusals) == 2 * len(
        site.clusters
    )  # the second of each pair was "Nothing new added"


def test_pairs_are_grouped_by_account():
    assert pairs_by_account([("a", "x"), ("b", "y"), ("a", "z")]) == {"a": ["x", "z"], "b": ["y"]}
