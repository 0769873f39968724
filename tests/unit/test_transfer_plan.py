"""Copies between clusters' homes: checked fields and the command lines (extensions/transfers)."""

import pytest

from centre.errors import FieldError
from centre.site import load_site
from extensions.transfers.plan import check_request, commands, home_path
from tests.harness import REPO

SITE = load_site(REPO / "deploy" / "site.example.yaml")
SUDO = ("sudo", "-n", "-u", "{username}")
GOOD = {"from_cluster": "beta", "from_path": "results/run1", "to_cluster": "alpha", "to_path": "in"}


@pytest.mark.parametrize(
    "path",
    ["..", "../other", "a/../../etc", "/etc/shadow", "a//b", "-rf", "--to-command=sh", ".ssh",
     "a b", "a\nb", "", "x" * 2000, 7, None],
)  # fmt: skip
def test_attack_a_path_outside_the_home_or_read_as_an_option_is_refused(path):
    with pytest.raises(FieldError) as refused:
        home_path("from_path", path)
    assert refused.value.field == "from_path"


def test_plain_folders_inside_the_home_are_taken():
    assert home_path("to_path", "results/run-1/out_2.v3/") == "results/run-1/out_2.v3"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"from_cluster": "delta"}, "from_cluster"),
        ({"to_cluster": None}, "to_cluster"),
        ({"to_path": "../x"}, "to_path"),
        ({"as_user": "root"}, "as_user"),
        ({"to_cluster": "beta", "to_path": "results/run1"}, "to_path"),
    ],
)
def test_each_bad_field_is_named(change, field):
    with pytest.raises(FieldError) as refused:
        check_request({**GOOD, **change}, SITE)
    assert refused.value.field == field


def test_both_ends_run_as_the_person_and_the_paths_stay_words():
    plan = commands(SITE, "alice", "/home/alice", check_request(GOOD, SITE), SUDO)
    assert plan.read == [
        "sudo", "-n", "-u", "alice", "env", "SLURM_CONF=/etc/corehour/slurm/beta/slurm.conf",
        "tar", "-C", "/home/alice/results/run1", "-cf", "-", ".",
    ]  # fmt: skip
    assert plan.write[:4] == ["sudo", "-n", "-u", "alice"]
    assert plan.write[-5:] == ["tar", "-C", "/home/alice/in", "-xf", "-"]
    assert plan.make[-3:] == ["-p", "--", "/home/alice/in"]
    assert plan.size[-3:] == ["-sb", "--", "/home/alice/results/run1"]
