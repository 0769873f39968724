"""The apps' Slurm runner: a cluster at another centre only from a server running there."""

import pytest

from centre.site import Cluster, Partition, SshTransport
from voila_apps.kit import slurm as kit

GAMMA = Cluster(
    slurm_conf="/etc/corehour/gamma/slurm.conf",
    ssh=SshTransport(host="gamma", user="corehour-remote"),
    partitions={"cpu": Partition()},
)
ALPHA = Cluster(slurm_conf="/etc/corehour/slurm/alpha/slurm.conf", partitions={"cpu": Partition()})


class FakeSite:
    clusters = {"alpha": ALPHA, "gamma": GAMMA}


def test_on_gamma_a_server_runs_gammas_slurm_locally(monkeypatch):
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "gamma")
    assert kit.person_argv(FakeSite, "gamma", ["sbatch", "--parsable"]) == [
        "env", "SLURM_CONF=/etc/corehour/gamma/slurm.conf", "sbatch", "--parsable",
    ]  # fmt: skip


def test_elsewhere_a_person_never_uses_the_portals_ssh_key(monkeypatch):
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "alpha")
    with pytest.raises(kit.SlurmError, match="start this app on gamma"):
        kit.person_argv(FakeSite, "gamma", ["sbatch"])
    monkeypatch.delenv("SLURM_CLUSTER_NAME")
    with pytest.raises(kit.SlurmError, match="another centre"):
        kit.person_argv(FakeSite, "gamma", ["squeue"])


def test_local_clusters_are_reached_as_before(monkeypatch):
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "gamma")
    assert kit.person_argv(FakeSite, "alpha", ["squeue"])[-1] == "squeue"
