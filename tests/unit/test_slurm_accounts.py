"""Slurm associations kept in step with the ledger: few sacctmgr calls, however many ask."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from billing_hooks.slurm_accounts import (
    SacctmgrError,
    SlurmAccounts,
    Wanted,
    load_file,
    pairs_by_account,
)
from centre.site import load_site
from centre.slurm_cli import CommandResult
from tests.harness import DEPLOY

pytestmark = pytest.mark.unit


class Sacctmgr:
    """Answers sacctmgr as slurmdbd would, from each cluster's (account, user) associations.

    ``load`` reads the file it is given, as sacctmgr does: it adds what is missing and sets
    the DefaultAccount of the users it names with one.  Writes that overlap in time are
    counted, because slurmdbd on MariaDB may deadlock and exit on them.
    """

    def __init__(self, existing: set[tuple[str, str]], clusters=("alpha", "beta")):
        self.existing = {cluster: {("root", ""), *existing} for cluster in clusters}
        self.defaults: dict[tuple[str, str], str] = {}
        self.calls: list[list[str]] = []
        self.loads: list[str] = []
        self.writing = 0
        self.most_writing_at_once = 0

    async def __call__(self, argv, timeout: float, input_text: str | None = None):
        argv = list(argv[argv.index("sacctmgr") :])
        self.calls.append(argv)
        if "load" in argv:
            return await self._load(input_text)
        cluster = next(a.split("=", 1)[1] for a in argv if a.startswith("cluster="))
        have = self.existing.get(cluster, set())
        await asyncio.sleep(0.01)  # others ask while this one is on its way
        if "show" in argv:
            rows = "".join(f"{a}|{u}\n" for a, u in sorted(have))
            return CommandResult(tuple(argv), 0, rows, "")
        raise AssertionError(f"unexpected sacctmgr call {argv}")

    async def _load(self, text: str) -> CommandResult:
        self.loads.append(text)
        self.writing += 1
        self.most_writing_at_once = max(self.most_writing_at_once, self.writing)
        await asyncio.sleep(0.05)  # a write takes a while; others arrive meanwhile
        self.writing -= 1
        cluster, parent = None, None
        for line in text.splitlines():
            kind, _, rest = line.partition(" - ")
            name = rest.split(":")[0].strip("'")
            if kind == "Cluster":
                cluster = name
            elif kind == "Parent":
                parent = name
            elif kind == "Account":
                self.existing[cluster].add((name, ""))
            elif kind == "User":
                self.existing[cluster].add((parent, name))
                if "DefaultAccount=" in rest:
                    self.defaults[cluster, name] = rest.split("DefaultAccount=")[1].strip("'")
            else:
                raise AssertionError(f"sacctmgr load cannot read {line!r}")
        return CommandResult(("sacctmgr", "load"), 0, "", "")

    def count(self, word: str) -> int:
        return sum(1 for call in self.calls if word in call)


@pytest.fixture
def site():
    return load_site(DEPLOY / "site.example.yaml")


def test_new_people_are_added_in_one_load_per_cluster(site):
    sacctmgr = Sacctmgr({("corehour", ""), ("corehour", "ann")})
    slurm = SlurmAccounts(site, run=sacctmgr)
    wanted = [Wanted("course-y", "y", ("ann", "bo", "cy")), Wanted("u-dee", "dee", ("dee",))]
    changes = asyncio.run(slurm.sync(wanted, {"dee": "u-dee"}))
    per_cluster = 2 + 4  # two new accounts and four new associations
    assert changes == per_cluster * len(site.clusters)
    assert sacctmgr.count("load") == len(site.clusters)
    for cluster, have in sacctmgr.existing.items():
        assert {("course-y", u) for u in ("ann", "bo", "cy")} | {("u-dee", "dee")} <= have
        assert sacctmgr.defaults[cluster, "dee"] == "u-dee"
    assert ("alpha", "ann") not in sacctmgr.defaults  # only where asked
    # Asking again changes nothing: one read per cluster, no writes.
    calls = len(sacctmgr.calls)
    assert asyncio.run(slurm.sync(wanted, {})) == 0
    assert ["show" in c for c in sacctmgr.calls[calls:]] == [True] * len(site.clusters)


def test_many_new_people_at_once_are_written_one_batch_at_a_time(site):
    # Twenty people's first spawns at the same moment, each with an account of their own.
    sacctmgr = Sacctmgr(set())
    slurm = SlurmAccounts(site, run=sacctmgr)

    async def first_spawn(i: int):
        await asyncio.sleep(i * 0.01)  # within 0.2 s, while earlier writes are under way
        name = f"p{i:02d}"
        await slurm.sync([Wanted(f"u-{name}", name, (name,))], {name: f"u-{name}"})

    async def burst():
        await asyncio.gather(*(first_spawn(i) for i in range(20)))

    asyncio.run(burst())
    assert sacctmgr.most_writing_at_once == 1
    # Those who asked while a batch was being written went together into the next one.
    assert len(sacctmgr.loads) <= 20 * len(site.clusters) / 2
    for cluster, have in sacctmgr.existing.items():
        for i in range(20):
            assert (f"u-p{i:02d}", f"p{i:02d}") in have
            assert sacctmgr.defaults[cluster, f"p{i:02d}"] == f"u-p{i:02d}"


def test_a_failed_write_is_reported_to_everyone_who_waited_for_it(site):
    sacctmgr = Sacctmgr(set())

    async def refusing(argv, timeout, input_text=None):
        if "load" in argv:
            return CommandResult(tuple(argv), 1, "", "sacctmgr: error: Problem adding")
        return await sacctmgr(argv, timeout)

    slurm = SlurmAccounts(site, run=refusing)

    async def two():
        return await asyncio.gather(
            *(slurm.sync([Wanted(f"u-{n}", n, (n,))], {}) for n in ("ann", "bo")),
            return_exceptions=True,
        )

    outcomes = asyncio.run(two())
    assert all(isinstance(o, SacctmgrError) and "Problem adding" in str(o) for o in outcomes)


def test_names_a_load_file_could_misread_are_refused_and_descriptions_cleaned():
    with pytest.raises(SacctmgrError, match="not a name Slurm accepts"):
        load_file("alpha", [], [("u-x", "bad':AdminLevel='Admin")], {})
    text = load_file("alpha", [Wanted("course-q", "Q: it's 'quoted'\nnew line", ())], [], {})
    assert "Description='Q its quotednew line'" in text


def test_a_cluster_slurmdbd_does_not_know_is_named_not_created(site):
    sacctmgr = Sacctmgr(set(), clusters=("beta",))  # "alpha" is missing from slurmdbd
    sacctmgr.existing["alpha"] = set()
    slurm = SlurmAccounts(site, run=sacctmgr)
    with pytest.raises(SacctmgrError, match="no cluster named 'alpha'"):
        asyncio.run(slurm.sync([Wanted("u-ann", "ann", ("ann",))], {}))
    assert sacctmgr.loads == []


def test_pairs_are_grouped_by_account():
    assert pairs_by_account([("a", "x"), ("b", "y"), ("a", "z")]) == {"a": ["x", "z"], "b": ["y"]}


def test_a_hub_that_remembers_reads_once_for_a_whole_enrolled_class(site):
    class_list = {("course-c", "")} | {("course-c", f"s{i:02d}") for i in range(30)}
    sacctmgr = Sacctmgr(class_list)
    slurm = SlurmAccounts(site, run=sacctmgr, remember=True)
    for i in range(30):
        asyncio.run(slurm.sync([Wanted("course-c", "c", (f"s{i:02d}",))], {}))
    # The first student's read listed the whole class; nobody after them needed sacctmgr.
    assert len(sacctmgr.calls) == len(site.clusters)
    assert sacctmgr.count("show") == len(site.clusters)
    # Someone not yet in Slurm is read for and added, and is known from then on.
    asyncio.run(slurm.sync([Wanted("course-c", "c", ("late",))], {}))
    assert sacctmgr.count("show") == 2 * len(site.clusters)
    assert all(("course-c", "late") in have for have in sacctmgr.existing.values())
    calls, loads = len(sacctmgr.calls), len(sacctmgr.loads)
    asyncio.run(slurm.sync([Wanted("course-c", "c", ("late",))], {}))
    assert len(sacctmgr.calls) == calls  # known: nothing asked
    asyncio.run(slurm.sync([Wanted("course-new", "n", ("late",))], {}))
    new = sacctmgr.loads[loads:]
    assert len(new) == len(site.clusters)
    assert all("Account - 'course-new'" in text for text in new)


def test_without_remembering_every_sync_reads_again(site):
    sacctmgr = Sacctmgr({("course-c", ""), ("course-c", "ann")})
    slurm = SlurmAccounts(site, run=sacctmgr)
    for _ in range(3):
        asyncio.run(slurm.sync([Wanted("course-c", "c", ("ann",))], {}))
    assert sacctmgr.count("show") == 3 * len(site.clusters)


class AwayCentre(Sacctmgr):
    """sacctmgr on ``away`` fails the way ssh to a centre that went away does."""

    def __init__(self, away: str):
        super().__init__(set())
        self.away = away

    async def __call__(self, argv, timeout: float, input_text: str | None = None):
        first_line = (input_text or "").partition("\n")[0]
        if f"cluster={self.away}" in argv or (
            first_line.startswith("Cluster") and self.away in first_line
        ):
            return CommandResult(
                tuple(argv), 255, "", "Connection timed out during banner exchange"
            )
        return await super().__call__(argv, timeout, input_text)


def admission_with(sacctmgr: Sacctmgr):
    from billing_hooks.admission import BillingAdmission

    billing = BillingAdmission(load_site(DEPLOY / "site.example.yaml"), lambda _username: [])
    billing._slurm.run = sacctmgr
    return billing


def test_a_centre_that_is_away_does_not_stop_a_start_on_the_others():
    """CI found it: with gamma cut, a person new to gamma could start nothing anywhere,
    because the spawn's association check failed on gamma."""
    fake = AwayCentre("beta")
    billing = admission_with(fake)
    account = SimpleNamespace(name="u-chnew", kind="personal")
    ready = asyncio.run(billing._ensure_in_slurm("chnew", account, ("alpha", "beta")))
    assert ready == ("alpha",)
    assert ("u-chnew", "chnew") in fake.existing["alpha"]


def test_a_start_is_refused_when_no_cluster_knows_the_account():
    from centre.admission import AdmissionRefused

    billing = admission_with(AwayCentre("alpha"))
    account = SimpleNamespace(name="u-chnew", kind="personal")
    with pytest.raises(AdmissionRefused, match="u-chnew: sacctmgr on alpha: Connection timed out"):
        asyncio.run(billing._ensure_in_slurm("chnew", account, ("alpha",)))
