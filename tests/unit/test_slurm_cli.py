"""Slurm commands are argv lists: the person's name and the cluster's prefix, never a shell."""

import asyncio

import pytest

from centre.site import Cluster, Partition
from centre.slurm_cli import cluster_argv, run_command

LOCAL = Cluster(slurm_conf="/etc/corehour/slurm/alpha/slurm.conf", partitions={"cpu": Partition()})
REMOTE = Cluster(exec_prefix=("ssh", "login.example.org"), partitions={"cpu": Partition()})
SUDO = ("sudo", "-n", "-u", "{username}")


@pytest.mark.parametrize(
    ("cluster", "username", "expected"),
    [
        (
            LOCAL,
            None,
            ["env", "SLURM_CONF=/etc/corehour/slurm/alpha/slurm.conf", "squeue", "--json"],
        ),
        (
            LOCAL,
            "alice",
            [
                "sudo",
                "-n",
                "-u",
                "alice",
                "env",
                "SLURM_CONF=/etc/corehour/slurm/alpha/slurm.conf",
                "squeue",
                "--json",
            ],
        ),
        (REMOTE, None, ["ssh", "login.example.org", "squeue --json"]),
        (REMOTE, "alice", ["ssh", "login.example.org", "sudo -n -u alice squeue --json"]),
    ],
)
def test_cluster_argv(cluster, username, expected):
    argv = cluster_argv(cluster, ["squeue", "--json"], username=username, user_prefix=SUDO)
    assert argv == expected


def test_remote_words_are_quoted_for_the_remote_shell():
    argv = cluster_argv(REMOTE, ["scancel", "1; rm -rf ~"], username="alice", user_prefix=SUDO)
    assert argv[-1] == "sudo -n -u alice scancel '1; rm -rf ~'"


def test_commands_never_inherit_the_hub_environment(monkeypatch):
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "secret-of-the-hub")
    result = asyncio.run(run_command(["env"]))
    assert result.ok
    assert "secret-of-the-hub" not in result.stdout
    assert "PATH=" in result.stdout


def test_missing_program_and_timeout_are_failed_results():
    missing = asyncio.run(run_command(["/nonexistent/squeue"]))
    assert missing.returncode == 127 and "cannot run" in missing.stderr
    slow = asyncio.run(run_command(["sleep", "5"], timeout=0.2))
    assert slow.returncode == 124 and "did not answer" in slow.stderr
