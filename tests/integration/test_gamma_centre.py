"""gamma, the remote centre of the test bed: a cluster the portal reaches only over ssh, with its
own munge key, accounting and homes (deploy/gamma.sh, docs/centres.md)."""

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from centre.site import Cluster, Partition, SshTransport
from centre.slurm_cli import cluster_argv, run_command, ssh_argv
from tests.gamma import (
    GAMMA_HOMES,
    GAMMA_SLURM_CONF,
    LOGIN_ACCOUNT,
    login_argv,
    on_gamma,
)
from tests.harness import DEPLOY, slurm

SUDO = ("sudo", "-n", "-u", "{username}")


CHECK_ACCOUNT = "gamma-check"


@pytest.fixture(scope="module")
def person(users):
    """A person who may submit on gamma under an account of this module's own: the default
    account is held whenever a billed portal has run against gamma (unbilled jobs are
    refused), and these checks must not depend on which tests ran before."""
    name = users[0]
    for argv in (
        ("sacctmgr", "-i", "add", "account", CHECK_ACCOUNT, "cluster=gamma"),
        ("sacctmgr", "-i", "add", "user", name, f"account={CHECK_ACCOUNT}", "cluster=gamma"),
    ):
        reply = on_gamma(*argv)
        assert reply.returncode == 0 or "Nothing new added" in reply.stdout, reply.stderr
    return name


def test_the_portal_reaches_gammas_login_node_with_its_key_and_gammas_pinned_host_key(clusters):
    reply = on_gamma("sinfo", "-h", "-o", "%P %N %T")
    assert reply.returncode == 0, reply.stderr
    partition, node, state = reply.stdout.split()
    assert (partition, node) == ("cpu*", "gamma")
    assert state in ("idle", "mixed", "allocated")
    assert (
        subprocess.run(login_argv("hostname"), capture_output=True, text=True).stdout == "gamma\n"
    )


def test_a_host_key_that_is_not_pinned_is_refused(clusters, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    reply = subprocess.run(
        login_argv("true", known_hosts=str(empty)), capture_output=True, text=True
    )
    assert reply.returncode == 255
    assert "Host key verification failed" in reply.stderr


def test_gammas_slurm_does_not_answer_the_hub_hosts_munge(clusters):
    # The hub host can read gamma's slurm.conf, but its munge key is not gamma's: only ssh works.
    local = subprocess.run(
        ["squeue", "-h"],
        env={**os.environ, "SLURM_CONF": GAMMA_SLURM_CONF},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert local.returncode != 0
    assert on_gamma("squeue", "-h").returncode == 0


def test_a_persons_job_runs_on_gamma_and_writes_into_gammas_home_not_the_hubs(person):
    marker = f"gamma-check-{os.getpid()}"
    reply = on_gamma(
        "sbatch", "--wait", "--parsable", f"--account={CHECK_ACCOUNT}", f"--chdir=/home/{person}",
        f"--output=/home/{person}/{marker}.out", "--wrap", "hostname; id -un",
        as_person=person,
    )  # fmt: skip
    assert reply.returncode == 0, reply.stderr
    job_id = reply.stdout.strip().split(";")[0]
    on_gammas_disk = GAMMA_HOMES / person / f"{marker}.out"
    assert on_gammas_disk.read_text().split() == ["gamma", person]
    assert on_gammas_disk.stat().st_uid == int(subprocess.check_output(["id", "-u", person]))
    assert not os.path.exists(f"/home/{person}/{marker}.out")

    # gamma's own slurmdbd accounts the job; the slurmdbd that alpha and beta share never saw it.
    sacct = on_gamma("sacct", "-X", "-n", "-P", "-j", job_id, "-o", "Cluster,User,State")
    assert sacct.stdout.split() == [f"gamma|{person}|COMPLETED"], sacct.stderr
    shared = slurm("alpha", "sacctmgr", "-n", "-P", "show", "cluster", "format=cluster")
    assert "gamma" not in shared.stdout.split()


def test_attack_the_login_account_cannot_become_root_or_anyone_outside_the_portal(clusters):
    for target in ("root", LOGIN_ACCOUNT, "corehour"):
        reply = subprocess.run(
            login_argv(f"sudo -n -u {target} /usr/bin/env id -un"), capture_output=True, text=True
        )
        assert reply.returncode != 0, target
        assert "password is required" in reply.stderr or "not allowed" in reply.stderr


def test_attack_a_person_cannot_log_in_to_gamma_with_the_portals_key(person):
    reply = subprocess.run(login_argv("id -un", user=person), capture_output=True, text=True)
    assert reply.returncode == 255
    assert "Permission denied" in reply.stderr


def test_gamma_reports_its_daemons(clusters):
    status = subprocess.run([str(DEPLOY / "gamma.sh"), "status"], capture_output=True, text=True)
    assert status.returncode == 0, status.stdout
    for daemon in ("slurmdbd", "slurmctld", "slurmd", "sshd"):
        assert f"gamma {daemon}" in status.stdout


def accepted_logins() -> int:
    log = Path("/var/log/corehour/gamma-sshd.log").read_text()
    return log.count(f"Accepted publickey for {LOGIN_ACCOUNT}")


def test_the_runners_commands_to_gamma_share_one_ssh_connection(clusters, person):
    control_dir = tempfile.mkdtemp(prefix="cm-", dir="/run/corehour")
    gamma = Cluster(
        slurm_conf=GAMMA_SLURM_CONF,
        ssh=SshTransport(
            host="gamma", user=LOGIN_ACCOUNT, control_dir=control_dir, control_persist_seconds=30
        ),
        partitions={"cpu": Partition()},
    )
    before = accepted_logins()
    try:
        replies = [
            asyncio.run(run_command(cluster_argv(gamma, ["squeue", "-h"]))) for _ in range(5)
        ]
        as_person = asyncio.run(
            run_command(cluster_argv(gamma, ["id", "-un"], username=person, user_prefix=SUDO))
        )
    finally:
        subprocess.run([*ssh_argv(gamma.ssh)[:-2], "-O", "exit", "gamma"], capture_output=True)
        shutil.rmtree(control_dir, ignore_errors=True)
    assert all(reply.ok for reply in replies), [reply.stderr for reply in replies]
    assert as_person.ok and as_person.stdout == f"{person}\n", as_person.stderr
    assert accepted_logins() - before == 1


def test_attack_a_person_cannot_ride_on_the_portals_open_connection_to_gamma(person):
    """The shared connection runs commands as the portal's account at gamma, which may act
    as anyone there: its socket must be out of a person's reach."""
    gamma = Cluster(
        slurm_conf=GAMMA_SLURM_CONF,
        ssh=SshTransport(host="gamma", user=LOGIN_ACCOUNT, control_persist_seconds=60),
        partitions={"cpu": Partition()},
    )
    control_dir = Path(gamma.ssh.control_dir)
    assert control_dir.stat().st_mode & 0o077 == 0
    before = set(control_dir.iterdir())
    assert asyncio.run(run_command(cluster_argv(gamma, ["true"]))).ok
    sockets = set(control_dir.iterdir()) - before or before
    for socket in sockets:
        ride = subprocess.run(
            ["sudo", "-n", "-u", person, "ssh", "-F", "none", "-o", "BatchMode=yes",
             "-S", str(socket), "-l", LOGIN_ACCOUNT, "gamma", "sudo -n -u root id"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert ride.returncode == 255, ride.stdout
        assert "Permission denied" in ride.stderr
        assert "uid=0" not in ride.stdout
