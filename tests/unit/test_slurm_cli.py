"""Slurm commands are argv lists: the person's name and the cluster's prefix, never a shell."""

import asyncio

import pytest
from pydantic import ValidationError

from centre.site import Cluster, Partition, SshTransport
from centre.slurm_cli import (
    CommandResult,
    accounting_argv,
    cluster_argv,
    control_dir_problem,
    failure_reason,
    run_command,
    ssh_argv,
)

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


GAMMA = Cluster(
    slurm_conf="/etc/corehour/gamma/slurm.conf",
    ssh=SshTransport(host="gamma", user="corehour-remote"),
    partitions={"cpu": Partition()},
)


def test_ssh_trusts_only_the_pinned_host_key_and_the_site_key_and_shares_one_connection():
    argv = cluster_argv(GAMMA, ["squeue", "--json"])
    options = dict(argv[i + 1].split("=", 1) for i, word in enumerate(argv) if word == "-o")
    assert argv[:3] == ["ssh", "-F", "none"]
    assert argv[argv.index("-i") + 1] == "/etc/corehour/ssh/id_ed25519"
    assert argv[argv.index("-l") + 1] == "corehour-remote"
    assert options["StrictHostKeyChecking"] == "yes"
    assert options["UserKnownHostsFile"] == "/etc/corehour/ssh/known_hosts"
    assert options["GlobalKnownHostsFile"] == "/dev/null"
    assert options["BatchMode"] == "yes"
    assert options["ControlMaster"] == "auto"
    assert options["ControlPath"] == "/run/corehour/ssh/%C"
    assert argv[-3:] == [
        "--",
        "gamma",
        "env SLURM_CONF=/etc/corehour/gamma/slurm.conf squeue --json",
    ]


def test_over_ssh_the_person_prefix_runs_on_the_login_node_and_every_word_is_quoted():
    argv = cluster_argv(GAMMA, ["scancel", "1; rm -rf ~"], username="alice", user_prefix=SUDO)
    assert argv[-2] == "gamma"
    assert argv[-1] == (
        "sudo -n -u alice env SLURM_CONF=/etc/corehour/gamma/slurm.conf scancel '1; rm -rf ~'"
    )


def test_no_kept_connection_means_no_shared_connection_at_all():
    ssh = SshTransport(host="gamma", user="corehour-remote", control_persist_seconds=0)
    argv = ssh_argv(ssh)
    # ControlMaster=no alone would still ride on another process's open connection.
    assert "ControlMaster=no" in argv and "ControlPath=none" in argv


@pytest.mark.parametrize(
    "host", ["-oProxyCommand=touch /tmp/pwned", "gamma; id", "gamma id", "", "gamma\n"]
)
def test_attack_a_host_that_ssh_would_read_as_an_option_or_a_command_is_refused(host):
    with pytest.raises(ValidationError) as refused:
        SshTransport(host=host, user="corehour-remote")
    assert "host" in str(refused.value)


@pytest.mark.parametrize("user", ["root -oProxyCommand=x", "-l", "Alice", ""])
def test_attack_a_login_account_that_is_not_a_unix_name_is_refused(user):
    with pytest.raises(ValidationError) as refused:
        SshTransport(host="gamma", user=user)
    assert "user" in str(refused.value)


def test_a_cluster_says_ssh_or_exec_prefix_not_both():
    with pytest.raises(ValidationError) as refused:
        Cluster(
            ssh=SshTransport(host="gamma", user="corehour-remote"),
            exec_prefix=("ssh", "gamma"),
            partitions={"cpu": Partition()},
        )
    assert "not both" in str(refused.value)


def test_an_ssh_failure_is_told_as_one_for_the_login_node():
    lost = CommandResult(
        ("ssh",),
        255,
        "",
        "mux_client_request_session: read from master failed: Broken pipe\n"
        "ssh: connect to host gamma port 22: Network is unreachable\n",
    )
    assert failure_reason(GAMMA, lost) == (
        "ssh to gamma failed: connect to host gamma port 22: Network is unreachable"
    )
    refused = CommandResult(("sbatch",), 1, "", "sbatch: error: Invalid account\n")
    assert failure_reason(GAMMA, refused) == "sbatch: error: Invalid account"
    assert failure_reason(LOCAL, CommandResult(("squeue",), 1, "", "")) == "exit status 1"


def test_attack_a_control_dir_others_can_reach_stops_the_hub(tmp_path):
    shared = tmp_path / "ssh"
    shared.mkdir(mode=0o700)
    ssh = SshTransport(host="gamma", user="corehour-remote", control_dir=str(shared))
    assert control_dir_problem("gamma", ssh) is None
    shared.chmod(0o777)
    assert "open to others (mode 777)" in control_dir_problem("gamma", ssh)
    shared.chmod(0o750)
    assert "clusters.gamma.ssh.control_dir" in control_dir_problem("gamma", ssh)
    shared.chmod(0o700)
    assert "not to this account" in control_dir_problem("gamma", ssh, uid=12345)
    missing = SshTransport(host="gamma", user="corehour-remote", control_dir="/nonexistent/x")
    assert "make it, mode 0700" in control_dir_problem("gamma", missing)


SSH = SshTransport(host="10.77.0.2", user="corehour-remote")
SACCT = ["sacct", "--json", "--allusers"]


def test_a_local_cluster_reads_the_shared_slurmdbd_naming_itself():
    assert LOCAL.accounting_source == "shared"
    assert accounting_argv("alpha", LOCAL, SACCT) == [
        "env", "SLURM_CONF=/etc/corehour/slurm/alpha/slurm.conf",
        "sacct", "--clusters=alpha", "--json", "--allusers",
    ]  # fmt: skip
    # sacctmgr names its cluster in its own arguments.
    sacctmgr = ["sacctmgr", "-n", "-P", "show", "association", "cluster=alpha"]
    assert accounting_argv("alpha", LOCAL, sacctmgr)[2:] == sacctmgr


def test_a_remote_centre_reads_its_own_accounting_over_its_transport():
    gamma = Cluster(ssh=SSH, partitions={"cpu": Partition()})
    assert gamma.accounting_source == "own"
    argv = accounting_argv("gamma", gamma, SACCT)
    assert argv == cluster_argv(gamma, SACCT)
    assert argv[-1] == "sacct --json --allusers" and "10.77.0.2" in argv


def test_a_remote_cluster_that_reports_to_the_hub_hosts_slurmdbd_costs_no_trip():
    federated = Cluster(
        ssh=SSH,
        accounting="shared",
        accounting_slurm_conf="/etc/slurm/federation.conf",
        partitions={"cpu": Partition()},
    )
    assert accounting_argv("delta", federated, SACCT) == [
        "env", "SLURM_CONF=/etc/slurm/federation.conf",
        "sacct", "--clusters=delta", "--json", "--allusers",
    ]  # fmt: skip
    plain = Cluster(ssh=SSH, accounting="shared", partitions={"cpu": Partition()})
    assert accounting_argv("delta", plain, SACCT) == ["sacct", "--clusters=delta", *SACCT[1:]]


def test_a_local_cluster_may_declare_its_own_accounting():
    own = Cluster(slurm_conf="/etc/x/slurm.conf", accounting="own", partitions={"cpu": Partition()})
    assert accounting_argv("x", own, SACCT) == cluster_argv(own, SACCT)


def test_an_accounting_conf_without_shared_accounting_is_refused():
    with pytest.raises(
        ValidationError, match="accounting_slurm_conf: only used with accounting: shared"
    ):
        Cluster(ssh=SSH, accounting_slurm_conf="/etc/slurm/x.conf", partitions={"cpu": Partition()})
    with pytest.raises(ValidationError, match="accounting"):
        Cluster(accounting="remote", partitions={"cpu": Partition()})
